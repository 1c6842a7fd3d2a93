//! Bit fields of the report: the guest policy fixed at launch, the platform info and the key info.

use serde::Serialize;

/// The guest policy the owner gave at launch; the firmware enforces it for the guest's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct GuestPolicy(pub u64);

impl GuestPolicy {
    pub const SMT: u64 = 1 << 16;
    /// Bit 17 is reserved and must be one.
    pub const RESERVED_MBO: u64 = 1 << 17;
    pub const MIGRATE_MA: u64 = 1 << 18;
    pub const DEBUG: u64 = 1 << 19;
    pub const SINGLE_SOCKET: u64 = 1 << 20;
    pub const CXL_ALLOW: u64 = 1 << 21;
    pub const MEM_AES_256_XTS: u64 = 1 << 22;
    pub const RAPL_DIS: u64 = 1 << 23;
    pub const CIPHERTEXT_HIDING: u64 = 1 << 24;
    pub const PAGE_SWAP_DISABLE: u64 = 1 << 25;
    /// Bits the firmware ABI defines (up to PAGE_SWAP_DISABLE); the rest must be zero.
    pub const DEFINED_BITS: u64 = (1 << 26) - 1;

    fn bit(self, mask: u64) -> bool {
        self.0 & mask != 0
    }
    pub fn abi_minor(self) -> u8 {
        self.0 as u8
    }
    pub fn abi_major(self) -> u8 {
        (self.0 >> 8) as u8
    }
    pub fn smt_allowed(self) -> bool {
        self.bit(Self::SMT)
    }
    pub fn reserved_mbo(self) -> bool {
        self.bit(Self::RESERVED_MBO)
    }
    pub fn migrate_ma_allowed(self) -> bool {
        self.bit(Self::MIGRATE_MA)
    }
    pub fn debug_allowed(self) -> bool {
        self.bit(Self::DEBUG)
    }
    pub fn single_socket_required(self) -> bool {
        self.bit(Self::SINGLE_SOCKET)
    }
    pub fn cxl_allowed(self) -> bool {
        self.bit(Self::CXL_ALLOW)
    }
    pub fn rapl_disabled(self) -> bool {
        self.bit(Self::RAPL_DIS)
    }
    pub fn ciphertext_hiding_required(self) -> bool {
        self.bit(Self::CIPHERTEXT_HIDING)
    }
}

/// What the platform was running with when the report was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PlatformInfo(pub u64);

impl PlatformInfo {
    pub const SMT_EN: u64 = 1 << 0;
    pub const TSME_EN: u64 = 1 << 1;
    pub const ECC_EN: u64 = 1 << 2;
    pub const RAPL_DIS: u64 = 1 << 3;
    pub const CIPHERTEXT_HIDING_EN: u64 = 1 << 4;

    pub fn smt_enabled(self) -> bool {
        self.0 & Self::SMT_EN != 0
    }
    pub fn tsme_enabled(self) -> bool {
        self.0 & Self::TSME_EN != 0
    }
    pub fn rapl_disabled(self) -> bool {
        self.0 & Self::RAPL_DIS != 0
    }
    pub fn ciphertext_hiding_enabled(self) -> bool {
        self.0 & Self::CIPHERTEXT_HIDING_EN != 0
    }
}

/// Which key signed the report and whether the chip id is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct KeyInfo(pub u32);

/// The key that signed a report (KEY_INFO.SIGNING_KEY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SigningKey {
    Vcek,
    Vlek,
    None,
    Reserved(u8),
}

impl KeyInfo {
    pub const AUTHOR_KEY_EN: u32 = 1 << 0;
    pub const MASK_CHIP_KEY: u32 = 1 << 1;
    pub const DEFINED_BITS: u32 = 0b1_1111;

    pub fn author_key_enabled(self) -> bool {
        self.0 & Self::AUTHOR_KEY_EN != 0
    }
    pub fn chip_id_masked(self) -> bool {
        self.0 & Self::MASK_CHIP_KEY != 0
    }
    pub fn signing_key(self) -> SigningKey {
        match (self.0 >> 2) & 0b111 {
            0 => SigningKey::Vcek,
            1 => SigningKey::Vlek,
            7 => SigningKey::None,
            other => SigningKey::Reserved(other as u8),
        }
    }
    pub fn with_signing_key(key: u32) -> u32 {
        key << 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_bits() {
        let p = GuestPolicy(0x3001f);
        assert!(p.smt_allowed());
        assert!(p.reserved_mbo());
        assert!(!p.debug_allowed());
        assert!(!p.migrate_ma_allowed());
        assert_eq!(p.abi_minor(), 0x1f);
        assert_eq!(p.abi_major(), 0);
        assert!(GuestPolicy(0x3001f | GuestPolicy::DEBUG).debug_allowed());
    }

    #[test]
    fn key_info() {
        assert_eq!(KeyInfo(0).signing_key(), SigningKey::Vcek);
        assert_eq!(KeyInfo(1 << 2).signing_key(), SigningKey::Vlek);
        assert_eq!(KeyInfo(7 << 2).signing_key(), SigningKey::None);
        assert_eq!(KeyInfo(3 << 2).signing_key(), SigningKey::Reserved(3));
        assert!(KeyInfo(2).chip_id_masked());
    }
}
