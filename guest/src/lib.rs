//! The guest side of snpkms: where SNP evidence comes from ([`source`]) and the client that
//! turns it into app keys ([`client`]).

pub mod client;
pub mod hardware;
pub mod source;

pub use client::{AppKeyGrant, GuestClient, GuestClientError};
#[cfg(feature = "simulator")]
pub use source::SimulatedSource;
pub use source::{EvidenceSource, GuestError, SnpEvidence};
