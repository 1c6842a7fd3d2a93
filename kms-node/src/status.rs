//! Every refusal as a gRPC status, in one place (as rustls maps its errors to alerts): the code,
//! the message (which names the problem and never carries key material), and typed details a
//! program can read instead of parsing the message (`google.rpc.ErrorInfo`, domain
//! `snpkms.v1`: `reason` is the refusal's label in capitals; metadata carry the registry's
//! reason and block, or how long to wait).

use snpkms_core::{NonceError, RateLimitScope, ReleaseError};
use std::collections::HashMap;
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

/// The ErrorInfo domain of every snpkms refusal.
pub const ERROR_DOMAIN: &str = "snpkms.v1";

/// The gRPC code of a refusal.
pub fn code(e: &ReleaseError) -> Code {
    match e {
        ReleaseError::Request(_) | ReleaseError::EpochAhead { .. } => Code::InvalidArgument,
        ReleaseError::Nonce(NonceError::TooMany(_)) | ReleaseError::RateLimited { .. } => {
            Code::ResourceExhausted
        }
        ReleaseError::Nonce(NonceError::Length(_)) => Code::InvalidArgument,
        ReleaseError::Nonce(_) | ReleaseError::ReportDataMismatch { .. } => {
            Code::FailedPrecondition
        }
        ReleaseError::Evidence(_) | ReleaseError::AppBinding(_) => Code::Unauthenticated,
        ReleaseError::Denied { .. } => Code::PermissionDenied,
        ReleaseError::Chain(e) if e.internal => Code::Internal,
        ReleaseError::Chain(_) | ReleaseError::NotServing(_) => Code::Unavailable,
        ReleaseError::Log(_) | ReleaseError::Signature(_) => Code::Internal,
        _ => Code::Internal,
    }
}

/// The status a client sees.
pub fn status(e: &ReleaseError) -> tonic::Status {
    let mut metadata = HashMap::new();
    match e {
        ReleaseError::Denied { reason, block } => {
            metadata.insert("registry_reason".to_string(), reason.clone());
            metadata.insert("block_number".to_string(), block.number.to_string());
            metadata.insert(
                "block_hash".to_string(),
                format!("0x{}", hex::encode(block.hash)),
            );
        }
        ReleaseError::RateLimited { scope, retry_after } => {
            metadata.insert(
                "retry_after_ms".to_string(),
                retry_after.as_millis().to_string(),
            );
            let (kind, key) = match scope {
                RateLimitScope::Client(ip) => ("client", ip.to_string()),
                RateLimitScope::App(app) => ("app", format!("0x{}", hex::encode(app))),
            };
            metadata.insert("scope".to_string(), kind.to_string());
            metadata.insert("key".to_string(), key);
        }
        ReleaseError::EpochAhead { requested, current } => {
            metadata.insert("requested_epoch".to_string(), requested.to_string());
            metadata.insert("current_epoch".to_string(), current.to_string());
        }
        _ => {}
    }
    tonic::Status::with_error_details(
        code(e),
        e.to_string(),
        ErrorDetails::with_error_info(e.label().to_ascii_uppercase(), ERROR_DOMAIN, metadata),
    )
}
