//! The guest side of snpkms: the client that turns this guest's SNP evidence (from
//! [`snpkms_platform`]) into app keys.

pub mod client;

pub use client::{AppKeyGrant, GuestClient, GuestClientError};
