//! Contract bindings generated from the committed artifacts (`contracts/artifacts/*.json`), and the
//! mapping of the verifier's [`BootInfo`] onto the Solidity struct.
//!
//! Generating from the artifacts (not from hand-written signatures) means an ABI change in the
//! contracts breaks this crate at compile time instead of silently mis-encoding calls.

#![allow(clippy::too_many_arguments, missing_docs)]

use alloy::primitives::{Address, Bytes, FixedBytes};
use snpkms_verifier::{BootInfo, Product, TcbVersion};

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    KmsRegistry,
    "../contracts/artifacts/KmsRegistry.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    AppAuth,
    "../contracts/artifacts/AppAuth.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    ERC1967Proxy,
    "../contracts/artifacts/ERC1967Proxy.json"
);

/// The Solidity `TcbVersion` as the registry ABI encodes it.
pub type SolTcbVersion = KmsRegistry::TcbVersion;
/// The Solidity `BootInfo` as the registry ABI encodes it.
pub type SolBootInfo = KmsRegistry::BootInfo;

impl From<TcbVersion> for SolTcbVersion {
    fn from(t: TcbVersion) -> Self {
        SolTcbVersion {
            bootloader: t.bootloader,
            tee: t.tee,
            snp: t.snp,
            microcode: t.microcode,
            fmc: t.fmc,
        }
    }
}

impl From<SolTcbVersion> for TcbVersion {
    fn from(t: SolTcbVersion) -> Self {
        TcbVersion {
            bootloader: t.bootloader,
            tee: t.tee,
            snp: t.snp,
            microcode: t.microcode,
            fmc: t.fmc,
        }
    }
}

/// Encodes a BootInfo for `isAppAllowed` / `isKmsAllowed`. The product is the registry's number
/// for it ([`Product::chain_id`]), not the Rust enum's discriminant.
pub fn sol_boot_info(info: &BootInfo) -> SolBootInfo {
    SolBootInfo {
        measurement: Bytes::copy_from_slice(&info.measurement),
        chipId: Bytes::copy_from_slice(info.chip_id_bytes()),
        appId: Address::from(info.app_id),
        composeHash: FixedBytes(info.compose_hash),
        product: info.product.chain_id(),
        reportedTcb: info.reported_tcb.into(),
        committedTcb: info.committed_tcb.into(),
        launchTcb: info.launch_tcb.into(),
        hostData: FixedBytes(info.host_data),
        guestSvn: info.guest_svn,
    }
}

/// The registry's product number for `product`.
pub fn product_id(product: Product) -> u8 {
    product.chain_id()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::SolValue;

    #[test]
    fn boot_info_fields_map_one_to_one() {
        let tcb = |n: u8| TcbVersion {
            bootloader: n,
            tee: n + 1,
            snp: n + 2,
            microcode: n + 3,
            fmc: n + 4,
        };
        let info = BootInfo {
            measurement: [1; 48],
            chip_id: Some([2; 64]),
            app_id: [3; 20],
            compose_hash: [4; 32],
            product: Product::Turin,
            reported_tcb: tcb(10),
            committed_tcb: tcb(20),
            launch_tcb: tcb(30),
            host_data: [5; 32],
            guest_svn: 0x01020304,
        };
        let s = sol_boot_info(&info);
        assert_eq!(s.measurement.as_ref(), &[1; 48]);
        assert_eq!(s.chipId.as_ref(), &[2; 64]);
        assert_eq!(s.appId, Address::repeat_byte(3));
        assert_eq!(s.composeHash, FixedBytes([4; 32]));
        assert_eq!(s.product, 2);
        assert_eq!(TcbVersion::from(s.reportedTcb.clone()), tcb(10));
        assert_eq!(TcbVersion::from(s.committedTcb.clone()), tcb(20));
        assert_eq!(TcbVersion::from(s.launchTcb.clone()), tcb(30));
        assert_eq!(s.hostData, FixedBytes([5; 32]));
        assert_eq!(s.guestSvn, 0x01020304);
        // The product travels as the registry number in its own word: after the outer offset,
        // the two dynamic-field offsets, appId and composeHash.
        let encoded = s.abi_encode();
        assert_eq!(encoded[5 * 32..6 * 32], {
            let mut w = [0u8; 32];
            w[31] = 2;
            w
        });
    }
}
