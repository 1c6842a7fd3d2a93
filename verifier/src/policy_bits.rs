//! Bit fields of the report: the guest policy fixed at launch, the platform info and the key info.

use serde::Serialize;

/// The guest policy the owner gave at launch; the firmware enforces it for the guest's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct GuestPolicy(pub u64);

impl GuestPolicy {
    /// Bit 16: SMT may be enabled on the host; clear means launch fails on an SMT platform.
    pub const SMT: u64 = 1 << 16;
    /// Bit 17 is reserved and must be one.
    pub const RESERVED_MBO: u64 = 1 << 17;
    /// Bit 18: the guest may be associated with a migration agent, which can export it.
    pub const MIGRATE_MA: u64 = 1 << 18;
    /// Bit 19: debugging is allowed, letting the host decrypt guest memory and state.
    pub const DEBUG: u64 = 1 << 19;
    /// Bit 20: the guest may be activated on one socket only.
    pub const SINGLE_SOCKET: u64 = 1 << 20;
    /// Bit 21: CXL devices or memory may be populated.
    pub const CXL_ALLOW: u64 = 1 << 21;
    /// Bit 22: memory encryption must use AES-256-XTS (clear: AES-128-XEX is also allowed).
    pub const MEM_AES_256_XTS: u64 = 1 << 22;
    /// Bit 23: Running Average Power Limit (RAPL) must be disabled, a power side channel.
    pub const RAPL_DIS: u64 = 1 << 23;
    /// Bit 24: ciphertext hiding must be enabled, so the host cannot read guest ciphertext.
    pub const CIPHERTEXT_HIDING: u64 = 1 << 24;
    /// Bit 25: the guest may not use the SNP_PAGE_MOVE, SNP_SWAP_OUT and SNP_SWAP_IN commands.
    pub const PAGE_SWAP_DISABLE: u64 = 1 << 25;
    /// Bits the firmware ABI defines (up to PAGE_SWAP_DISABLE); the rest must be zero.
    pub const DEFINED_BITS: u64 = (1 << 26) - 1;

    fn bit(self, mask: u64) -> bool {
        self.0 & mask != 0
    }
    /// Bits 7:0: the minimum firmware ABI minor version the guest requires.
    pub fn abi_minor(self) -> u8 {
        self.0 as u8
    }
    /// Bits 15:8: the minimum firmware ABI major version the guest requires.
    pub fn abi_major(self) -> u8 {
        (self.0 >> 8) as u8
    }
    /// Whether [`Self::SMT`] is set.
    pub fn smt_allowed(self) -> bool {
        self.bit(Self::SMT)
    }
    /// Whether [`Self::RESERVED_MBO`] is set, as it must be.
    pub fn reserved_mbo(self) -> bool {
        self.bit(Self::RESERVED_MBO)
    }
    /// Whether [`Self::MIGRATE_MA`] is set.
    pub fn migrate_ma_allowed(self) -> bool {
        self.bit(Self::MIGRATE_MA)
    }
    /// Whether [`Self::DEBUG`] is set.
    pub fn debug_allowed(self) -> bool {
        self.bit(Self::DEBUG)
    }
    /// Whether [`Self::SINGLE_SOCKET`] is set.
    pub fn single_socket_required(self) -> bool {
        self.bit(Self::SINGLE_SOCKET)
    }
    /// Whether [`Self::CXL_ALLOW`] is set.
    pub fn cxl_allowed(self) -> bool {
        self.bit(Self::CXL_ALLOW)
    }
    /// Whether [`Self::RAPL_DIS`] is set (RAPL required off).
    pub fn rapl_disabled(self) -> bool {
        self.bit(Self::RAPL_DIS)
    }
    /// Whether [`Self::MEM_AES_256_XTS`] is set.
    pub fn mem_aes_256_xts(self) -> bool {
        self.bit(Self::MEM_AES_256_XTS)
    }
    /// Whether [`Self::PAGE_SWAP_DISABLE`] is set.
    pub fn page_swap_disabled(self) -> bool {
        self.bit(Self::PAGE_SWAP_DISABLE)
    }
    /// Whether [`Self::CIPHERTEXT_HIDING`] is set.
    pub fn ciphertext_hiding_required(self) -> bool {
        self.bit(Self::CIPHERTEXT_HIDING)
    }
}

/// What the platform was running with when the report was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PlatformInfo(pub u64);

impl PlatformInfo {
    /// Bit 0: SMT is enabled on the platform.
    pub const SMT_EN: u64 = 1 << 0;
    /// Bit 1: Transparent SME (encryption of all memory) is enabled.
    pub const TSME_EN: u64 = 1 << 1;
    /// Bit 2: the platform uses error-correcting memory.
    pub const ECC_EN: u64 = 1 << 2;
    /// Bit 3: RAPL is disabled.
    pub const RAPL_DIS: u64 = 1 << 3;
    /// Bit 4: ciphertext hiding is enabled.
    pub const CIPHERTEXT_HIDING_EN: u64 = 1 << 4;
    /// Bit 5: memory alias detection completed since the last reset and found no aliases:
    /// the mitigation of BadRAM (AMD-SB-3015), where a tampered DIMM maps two addresses to
    /// one cell and lets the host rewrite encrypted guest memory.
    pub const ALIAS_CHECK_COMPLETE: u64 = 1 << 5;
    /// Bit 7: SEV-TIO (trusted I/O with devices) is enabled.
    pub const TIO_EN: u64 = 1 << 7;

    /// Whether [`Self::SMT_EN`] is set.
    pub fn smt_enabled(self) -> bool {
        self.0 & Self::SMT_EN != 0
    }
    /// Whether [`Self::TSME_EN`] is set.
    pub fn tsme_enabled(self) -> bool {
        self.0 & Self::TSME_EN != 0
    }
    /// Whether [`Self::ECC_EN`] is set.
    pub fn ecc_enabled(self) -> bool {
        self.0 & Self::ECC_EN != 0
    }
    /// Whether [`Self::ALIAS_CHECK_COMPLETE`] is set.
    pub fn alias_check_complete(self) -> bool {
        self.0 & Self::ALIAS_CHECK_COMPLETE != 0
    }
    /// Whether [`Self::TIO_EN`] is set.
    pub fn tio_enabled(self) -> bool {
        self.0 & Self::TIO_EN != 0
    }
    /// Whether [`Self::RAPL_DIS`] is set.
    pub fn rapl_disabled(self) -> bool {
        self.0 & Self::RAPL_DIS != 0
    }
    /// Whether [`Self::CIPHERTEXT_HIDING_EN`] is set.
    pub fn ciphertext_hiding_enabled(self) -> bool {
        self.0 & Self::CIPHERTEXT_HIDING_EN != 0
    }
}

/// Which key signed the report, and whether it was signed at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct KeyInfo(pub u32);

/// The key that signed a report (KEY_INFO.SIGNING_KEY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SigningKey {
    /// 0: the chip's VCEK.
    Vcek,
    /// 1: a VLEK, a key AMD issues to a cloud provider.
    Vlek,
    /// 7: no key; the report is not signed.
    None,
    /// 2 to 6: reserved values; holds the value.
    Reserved(u8),
}

impl KeyInfo {
    /// Bit 0: AUTHOR_KEY_DIGEST holds the digest of an author key.
    pub const AUTHOR_KEY_EN: u32 = 1 << 0;
    /// Bit 1: the platform's MaskChipKey setting. Per the firmware ABI, when it is set the
    /// firmware writes zeros into the signature instead of signing the report.
    pub const MASK_CHIP_KEY: u32 = 1 << 1;
    /// Bits 4:0 are defined (AUTHOR_KEY_EN, MASK_CHIP_KEY, SIGNING_KEY); the rest must be zero.
    pub const DEFINED_BITS: u32 = 0b1_1111;

    /// Whether [`Self::AUTHOR_KEY_EN`] is set.
    pub fn author_key_enabled(self) -> bool {
        self.0 & Self::AUTHOR_KEY_EN != 0
    }
    /// Whether [`Self::MASK_CHIP_KEY`] is set: the report carries a zero signature. (The ABI's
    /// separate MaskChipId setting has no KEY_INFO bit: it shows only as an all-zero chip_id.)
    pub fn mask_chip_key(self) -> bool {
        self.0 & Self::MASK_CHIP_KEY != 0
    }
    /// Bits 4:2 (SIGNING_KEY): the key that signed the report.
    pub fn signing_key(self) -> SigningKey {
        match (self.0 >> 2) & 0b111 {
            0 => SigningKey::Vcek,
            1 => SigningKey::Vlek,
            7 => SigningKey::None,
            other => SigningKey::Reserved(other as u8),
        }
    }
    /// A KEY_INFO value with SIGNING_KEY = `key & 7` and every other bit clear (for building
    /// reports).
    pub fn with_signing_key(key: u32) -> u32 {
        (key & 0b111) << 2
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
        assert!(KeyInfo(2).mask_chip_key());
        assert_eq!(KeyInfo::with_signing_key(9), 1 << 2);
    }
}
