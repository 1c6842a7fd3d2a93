//! `--compose FILE | --compose-hash HEX`: how every command names the compose an app runs.

use super::guest_source::parse_hex;
use anyhow::Context;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ComposeArg {
    /// The compose file; its SHA-256 is the compose hash.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "compose_hash",
        required_unless_present = "compose_hash"
    )]
    compose: Option<PathBuf>,
    /// The compose hash (32 bytes, hex), instead of --compose.
    #[arg(long, value_name = "HEX")]
    compose_hash: Option<String>,
}

impl ComposeArg {
    /// The compose hash, read from the file or parsed from hex.
    pub fn hash(&self) -> anyhow::Result<[u8; 32]> {
        match (&self.compose, &self.compose_hash) {
            (Some(path), None) => Ok(Sha256::digest(super::read_file(path)?).into()),
            (None, Some(hex)) => parse_hex::<32>(hex).context("--compose-hash"),
            _ => anyhow::bail!("give exactly one of --compose and --compose-hash"),
        }
    }
}
