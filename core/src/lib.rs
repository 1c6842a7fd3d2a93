//! The snpkms node core: GetChallenge, GetAppKey and the serving side of Onboard, from
//! verified evidence to a sealed, signed, recorded answer.
//!
//! It depends on four small ports and nothing else (no gRPC, no files, no chain client): the
//! platform ([`Attestor`]), the registry ([`Authorizer`]), the key-release log
//! ([`ReleaseLog`]) and a [`Clock`], plus an [`Observer`] for metrics ([`ports`]). The node
//! binary (`snpkms-kms-node`) implements them and wires the core into its gRPC server; tests
//! use fakes (`snpkms-testkit`).
//!
//! One request's path: [`validate_request`] (lengths) -> the nonce -> [`EvidenceVerifier`]
//! (the pure verifier plus a cache of verified certificate chains) -> the host_data binding
//! ([`ValidatedRequest::boot_info`]) -> [`Authorizer::is_app_allowed`] -> the node's own
//! standing -> [`keys`] (HKDF) and the KMS signature -> HPKE seal -> [`ReleaseLog`] -> answer.

#![warn(missing_docs)]

mod custody;
mod error;
mod evidence;
mod grants;
pub mod keys;
mod node;
mod nonces;
pub mod ports;
mod ratelimit;
mod record;
mod request;

pub use custody::{Custody, NodeShare, NODE_SIGNING_SALT};
pub use error::{RateLimitScope, Refusal, ReleaseError, RequestError};
pub use evidence::{EvidenceError, EvidenceVerifier};
pub use grants::{AppGrant, GrantCache};
pub use node::{CoreLimits, KmsState, Node, NodeParts};
pub use nonces::{NonceError, NONCE_LEN};
pub use ports::{
    Attestor, Authorizer, AuthorizerError, BlockRef, CertSourceError, CertificateSource, Clock,
    Decision, KmsInfo, LogError, NoCertificateSource, Observer, Ports, ReleaseLog, Reservation,
    ThresholdGroup, ThresholdMember, VcekCheck, VcekRefusal,
};
pub use ratelimit::RateLimiter;
pub use record::{NewRecord, RecordKind, ShareOrigin};
pub use request::{
    validate_request, validate_sign_request, ValidatedRequest, ValidatedSignRequest,
    GET_APP_KEY_BINDING, ONBOARD_BINDING, SIGN_APP_KEY_BINDING,
};
