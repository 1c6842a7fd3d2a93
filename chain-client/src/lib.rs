//! Everything snpkms asks of Ethereum: authorization reads the KMS decides on, the audit trail
//! of authorization events, and the owner/governance transactions that change the policy.
//!
//! Reads ([`ChainClient`]) are pinned to one block (`latest - confirmations`, or the
//! `safe`/`finalized` tag), answered by a quorum of RPC endpoints that must agree on the block
//! hash and the answer, refused when the chain is stale, and cached per BootInfo until an event
//! that may change them. No error is ever a decision: callers refuse on every `Err`.

mod audit;
pub mod bindings;
mod client;
mod config;
mod deploy;
mod error;
mod inspect;
mod owner;
mod rpc;
#[cfg(feature = "testing")]
pub mod testing;
mod transport;

pub use audit::{AuditEvent, AuditKind, AuditReader};
pub use client::{CacheStats, ChainClient, Decision, KmsInfo};
pub use config::{ChainConfig, ReadAt};
pub use deploy::{deploy_registry, deploy_registry_with_progress, Deployment};
pub use error::{decode_revert, ChainError};
pub use inspect::{AppStatus, Inspector, RegistryStatus};
pub use owner::{device_id, signer_from_env, signer_from_file, Owner, Progress, TxOutcome};
pub use transport::{spki_sha256_of_certificate, RpcEndpoint};

pub use alloy::primitives::{keccak256, Address, B256};
pub use alloy::signers::local::PrivateKeySigner;

use serde::Serialize;

/// A block by number and hash: the hash says which fork the number is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct BlockRef {
    pub number: u64,
    pub hash: B256,
}

impl std::fmt::Display for BlockRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{} ({})", self.number, self.hash)
    }
}
