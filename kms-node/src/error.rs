//! Why a key was not released, and the gRPC status each reason maps to. Messages say what to
//! fix and never carry key material.

use crate::nonces::NonceError;
use snpkms_chain_client::ChainError;
use snpkms_verifier::{BootInfoError, VerifyError};
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Nonce(#[from] NonceError),
    #[error("report_data does not bind this request: it must be SHA-512(\"{domain}\" || nonce || ephemeral_public_key)")]
    ReportDataMismatch { domain: &'static str },
    #[error("evidence rejected: {0}")]
    Evidence(#[from] VerifyError),
    #[error("evidence does not bind the claimed app: {0}")]
    AppBinding(#[from] BootInfoError),
    #[error("the registry refused at block {block}: {reason}")]
    Denied { reason: String, block: String },
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    #[error("key epoch {requested} is ahead of the registry's current epoch {current}")]
    EpochAhead { requested: u32, current: u32 },
    #[error("this node is not serving: {0}")]
    NotServing(String),
    #[error("rate limited: {0}")]
    RateLimited(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ReleaseError {
    pub fn code(&self) -> Code {
        match self {
            ReleaseError::InvalidArgument(_) | ReleaseError::EpochAhead { .. } => {
                Code::InvalidArgument
            }
            ReleaseError::Nonce(NonceError::TooMany(_)) | ReleaseError::RateLimited(_) => {
                Code::ResourceExhausted
            }
            ReleaseError::Nonce(NonceError::Length(_)) => Code::InvalidArgument,
            ReleaseError::Nonce(_) | ReleaseError::ReportDataMismatch { .. } => {
                Code::FailedPrecondition
            }
            ReleaseError::Evidence(_) | ReleaseError::AppBinding(_) => Code::Unauthenticated,
            ReleaseError::Denied { .. } => Code::PermissionDenied,
            ReleaseError::Chain(ChainError::Contract(_)) => Code::Internal,
            ReleaseError::Chain(_) | ReleaseError::NotServing(_) => Code::Unavailable,
            ReleaseError::Internal(_) => Code::Internal,
        }
    }

    /// A short stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ReleaseError::InvalidArgument(_) => "invalid_argument",
            ReleaseError::Nonce(_) => "nonce",
            ReleaseError::ReportDataMismatch { .. } => "report_data",
            ReleaseError::Evidence(e) => e.kind(),
            ReleaseError::AppBinding(_) => "host_data",
            ReleaseError::Denied { .. } => "denied",
            ReleaseError::Chain(_) => "chain",
            ReleaseError::EpochAhead { .. } => "epoch",
            ReleaseError::NotServing(_) => "not_serving",
            ReleaseError::RateLimited(_) => "rate_limited",
            ReleaseError::Internal(_) => "internal",
        }
    }
}

impl From<ReleaseError> for Status {
    fn from(e: ReleaseError) -> Status {
        Status::new(e.code(), e.to_string())
    }
}

impl From<crate::audit_log::AuditLogError> for ReleaseError {
    fn from(e: crate::audit_log::AuditLogError) -> Self {
        ReleaseError::Internal(e.to_string())
    }
}

impl From<crate::store::StoreError> for ReleaseError {
    fn from(e: crate::store::StoreError) -> Self {
        ReleaseError::Internal(e.to_string())
    }
}
