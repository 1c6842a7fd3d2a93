//! Why a key (or the root) was not released, typed: each variant carries what the caller needs
//! to act on (the field, the registry's reason and block, how long to wait) and keeps its
//! source. The node maps them to gRPC statuses in one place (`kms-node/src/status.rs`).
//! Messages never carry key material.

use crate::nonces::NonceError;
use crate::ports::{AuthorizerError, BlockRef, LogError};
use snpkms_verifier::{BootInfoError, VerifyError};
use std::time::Duration;

/// A malformed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// A fixed-size field of another size.
    #[error("{field} must be {expected} bytes, got {got}")]
    Length {
        /// The field.
        field: &'static str,
        /// Its size.
        expected: usize,
        /// What came.
        got: usize,
    },
    /// No evidence in the request.
    #[error("evidence is missing")]
    MissingEvidence,
    /// The ephemeral key cannot be sealed to (not an X25519 public key HPKE accepts).
    #[error("ephemeral_public_key cannot be used: {0}")]
    EphemeralKey(String),
}

/// What a rate limit was keyed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitScope {
    /// Requests from one client address.
    Client(std::net::IpAddr),
    /// Key requests for one app.
    App([u8; 20]),
}

impl std::fmt::Display for RateLimitScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RateLimitScope::Client(ip) => write!(f, "requests from {ip}"),
            RateLimitScope::App(app) => write!(f, "key requests for app 0x{}", hex::encode(app)),
        }
    }
}

/// Why nothing was released.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// A field of the wrong size, missing evidence, an unusable key.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// An epoch the registry has not reached.
    #[error("key epoch {requested} is ahead of the registry's current epoch {current}")]
    EpochAhead {
        /// What the guest asked for.
        requested: u32,
        /// The registry's.
        current: u32,
    },
    /// A nonce that is unknown, used, expired, malformed, or too many outstanding.
    #[error(transparent)]
    Nonce(#[from] NonceError),
    /// The report is not bound to this request.
    #[error("report_data does not bind this request: it must be {binding}")]
    ReportDataMismatch {
        /// What it must be, e.g. `SHA-512("snpkms/get-app-key/v1" || nonce || ephemeral_public_key)`.
        binding: &'static str,
    },
    /// The evidence failed verification (the source names the check).
    #[error("evidence rejected: {0}")]
    Evidence(#[from] VerifyError),
    /// The evidence came without its VCEK and none could be had (UNAVAILABLE), or what a
    /// source served does not verify (UNAUTHENTICATED).
    #[error("{0}")]
    Certificates(#[from] crate::ports::CertSourceError),
    /// host_data does not commit to the claimed app and compose.
    #[error("evidence does not bind the claimed app: {0}")]
    AppBinding(#[from] BootInfoError),
    /// The registry said no.
    #[error("the registry refused at block {block}: {reason}")]
    Denied {
        /// The registry's reason (`"compose hash not allowed"`, ...).
        reason: String,
        /// The block it was read at.
        block: BlockRef,
    },
    /// The registry could not be read.
    #[error("registry read failed: {0}")]
    Registry(#[from] AuthorizerError),
    /// This node may not serve (another root registered, or the registry no longer allows it).
    #[error("this node is not serving: {0}")]
    NotServing(String),
    /// Too many requests for this scope.
    #[error("rate limited: too many {scope}; retry in {} ms", retry_after.as_millis())]
    RateLimited {
        /// What the limit is keyed on.
        scope: RateLimitScope,
        /// When a request would pass again.
        retry_after: Duration,
    },
    /// The key-release log did not take the record: nothing is released without it.
    #[error("the key-release log could not record this decision: {0}")]
    Log(#[from] LogError),
    /// The request belongs to the other mode: GetAppKey or Onboard to a threshold node (it holds
    /// no root), GetAppKeyShare to a replicated-root node (it holds no share).
    #[error("this node runs the {node} mode and holds no {missing}: {hint}")]
    WrongMode {
        /// This node's mode.
        node: &'static str,
        /// What the request needs.
        missing: &'static str,
        /// What to do instead.
        hint: &'static str,
    },
    /// Evaluating this node's partial failed (its random number generator; never expected).
    #[error("evaluating the partial failed: {0}")]
    Partial(#[from] snpkms_threshold::ThresholdError),
    /// Signing the app key failed (never expected).
    #[error("signing the app key failed: {0}")]
    Signature(#[from] snpkms_api::app_key_signature::SignatureError),
}

/// What kind of refusal an error is: the node maps each to one gRPC status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The request is malformed.
    InvalidArgument,
    /// The evidence does not prove what the request claims.
    Unauthenticated,
    /// The request is not bound to a live challenge of this node.
    FailedPrecondition,
    /// The registry said no.
    PermissionDenied,
    /// No decision could be made now (chain, or this node's standing); retrying may help.
    Unavailable,
    /// Too many requests or challenges.
    ResourceExhausted,
    /// The node failed (its log, the registry's contract); nothing was released.
    Internal,
}

impl ReleaseError {
    /// The kind of refusal.
    pub fn refusal(&self) -> Refusal {
        match self {
            ReleaseError::Request(_) | ReleaseError::EpochAhead { .. } => Refusal::InvalidArgument,
            ReleaseError::RateLimited { .. } => Refusal::ResourceExhausted,
            ReleaseError::Nonce(NonceError::Length(_)) => Refusal::InvalidArgument,
            ReleaseError::Nonce(_) | ReleaseError::ReportDataMismatch { .. } => {
                Refusal::FailedPrecondition
            }
            ReleaseError::Evidence(_) | ReleaseError::AppBinding(_) => Refusal::Unauthenticated,
            ReleaseError::Certificates(crate::ports::CertSourceError::Unavailable(_)) => {
                Refusal::Unavailable
            }
            ReleaseError::Certificates(crate::ports::CertSourceError::NotConfigured) => {
                Refusal::FailedPrecondition
            }
            ReleaseError::Certificates(_) => Refusal::Unauthenticated,
            ReleaseError::Denied { .. } => Refusal::PermissionDenied,
            ReleaseError::Registry(e) if e.internal => Refusal::Internal,
            ReleaseError::Registry(_) | ReleaseError::NotServing(_) => Refusal::Unavailable,
            ReleaseError::WrongMode { .. } => Refusal::FailedPrecondition,
            ReleaseError::Log(_) | ReleaseError::Signature(_) | ReleaseError::Partial(_) => {
                Refusal::Internal
            }
        }
    }

    /// A short stable label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            ReleaseError::Request(_) => "invalid_argument",
            ReleaseError::EpochAhead { .. } => "epoch",
            ReleaseError::Nonce(_) => "nonce",
            ReleaseError::ReportDataMismatch { .. } => "report_data",
            ReleaseError::Evidence(e) => e.kind(),
            ReleaseError::AppBinding(_) => "host_data",
            ReleaseError::Certificates(crate::ports::CertSourceError::Unavailable(_)) => {
                "certificates_unavailable"
            }
            ReleaseError::Certificates(_) => "certificates",
            ReleaseError::Denied { .. } => "denied",
            ReleaseError::Registry(_) => "registry",
            ReleaseError::NotServing(_) => "not_serving",
            ReleaseError::RateLimited { .. } => "rate_limited",
            ReleaseError::WrongMode { .. } => "mode",
            ReleaseError::Log(_) | ReleaseError::Signature(_) | ReleaseError::Partial(_) => {
                "internal"
            }
        }
    }
}

impl From<crate::evidence::EvidenceError> for ReleaseError {
    fn from(e: crate::evidence::EvidenceError) -> Self {
        match e {
            crate::evidence::EvidenceError::Invalid(e) => ReleaseError::Evidence(e),
            crate::evidence::EvidenceError::Certificates(e) => ReleaseError::Certificates(e),
        }
    }
}
