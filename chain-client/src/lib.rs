//! What a KMS node asks of Ethereum: authorization reads it decides on.
//!
//! Reads ([`ChainClient`]) go to authenticated endpoints ([`RpcEndpoint`]: https with compiled-in
//! roots or pins, http only to loopback), are pinned to one block (`latest - confirmations`, or
//! the `safe`/`finalized` tag) whose summary a quorum agrees on, are decided by k agreeing
//! answers, refused when the pinned block is stale, and cached per BootInfo until an event that
//! may change them. No error is ever a decision: callers refuse on every `Err`.
//!
//! The read path, one job per module: `transport` (how an endpoint is reached), `rpc` (one
//! endpoint with timeouts and retries), `view` (the pinned view), `quorum` (the vote),
//! `follower` (what changed between views), `cache` (decisions), `client` (the facade).
//! Governance tools (transactions, audit) live in `snpkms-governance`, not here.

#![warn(missing_docs)]

pub mod bindings;
mod cache;
mod client;
mod config;
mod error;
mod follower;
mod quorum;
mod rpc;
mod transport;
mod view;

pub use client::{
    CacheStats, ChainClient, Decision, KmsInfo, ThresholdGroupInfo, ThresholdNodeInfo,
};
pub use config::{ChainConfig, ReadAt};
pub use error::{decode_revert, ChainError};
pub use rpc::{map_transport_error, BlockSummary, Connection};
pub use transport::{http_client, spki_sha256_of_certificate, RpcEndpoint};

pub use alloy::primitives::{keccak256, Address, B256};
pub use alloy::signers::local::PrivateKeySigner;

use serde::Serialize;

/// A block by number and hash: the hash says which fork the number is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct BlockRef {
    /// Height.
    pub number: u64,
    /// Which block at that height.
    pub hash: B256,
}

/// The chain as the follower last saw it ([`ChainClient::position`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainPosition {
    /// The k-th newest head among the endpoints.
    pub head: u64,
    /// The block reads are pinned to.
    pub pinned: u64,
    /// The pinned block's timestamp (Unix seconds): how stale the view is.
    pub pinned_timestamp: u64,
    /// How old the pinned block may be before the node decides nothing (its configuration).
    pub max_staleness_secs: u64,
    /// The last poll succeeded (reads are served from this view).
    pub healthy: bool,
}

impl std::fmt::Display for BlockRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{} ({})", self.number, self.hash)
    }
}
