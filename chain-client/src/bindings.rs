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
        chipId: Bytes::copy_from_slice(&info.chip_id),
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
