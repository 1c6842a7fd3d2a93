//! The guest side of snpkms: the client that turns this guest's SNP evidence (from
//! [`snpkms_platform`]) into app keys.

#![warn(missing_docs)]

mod client;
pub mod threshold;

pub use client::{open_grant, AppKeyGrant, GuestClient, GuestClientError};
