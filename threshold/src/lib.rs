//! Threshold key derivation: no single KMS node holds the secret an app's keys come from.
//!
//! The n nodes of a threshold deployment hold Shamir shares `s_i` of a secret `s` that no one
//! ever assembles, made by a distributed key generation without a dealer (FROST's, RFC 9591,
//! with Feldman commitments: [`shares`]). What is public, and goes on-chain, is the
//! [`GroupKeys`]: the group key `s·G` and each node's verifying share `s_i·G`.
//!
//! For an app and an epoch every node maps `(app_id, epoch)` to a point `X` of secp256k1
//! ([`input::app_key_input`], RFC 9380 hash to curve) and answers `s_i·X` with a
//! Chaum-Pedersen proof that it used the `s_i` of its verifying share ([`partial`], [`dleq`]).
//! A guest checks each proof against the on-chain shares, drops the partials that fail, and
//! combines t good ones by Lagrange interpolation in the exponent into `s·X` ([`combine`]):
//! the same point whichever t nodes answered. The app's keys come from that point by HKDF
//! ([`AppSecret::app_keys`], `snpkms_api::app_keys`), as they come from the root secret in the
//! replicated-root mode. Fewer than t shares say nothing about `s·X`.

#![warn(missing_docs)]

pub mod combine;
pub mod dleq;
mod error;
pub mod group;
pub mod input;
pub mod keygen;
pub mod partial;
pub mod repair;
pub mod shares;
#[cfg(feature = "testing")]
pub mod testing;

pub use combine::{combine, AppSecret};
pub use error::ThresholdError;
pub use group::GroupKeys;
pub use partial::{evaluate, verify, Partial, VerifiedPartial};
pub use shares::KeyShare;
