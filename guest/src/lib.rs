//! The guest side of snpkms: where SNP evidence comes from ([`source`]) and the client that
//! turns it into app keys ([`client`]).

pub mod client;
pub mod hardware;
pub mod source;

pub use client::{AppKeyGrant, GuestClient, GuestClientError};
pub use source::{EvidenceSource, GuestError, SimulatedSource, SnpEvidence};
