//! Every refusal as a gRPC status, in one place (as rustls maps its errors to alerts): the code,
//! the message (which names the problem and never carries key material), and typed details a
//! program can read instead of parsing the message (`google.rpc.ErrorInfo`, domain
//! `snpkms.v1`: `reason` is the refusal's label in capitals; metadata carry the registry's
//! reason and block, or how long to wait).

use snpkms_core::{RateLimitScope, Refusal, ReleaseError};
use std::collections::HashMap;
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

/// The ErrorInfo domain of every snpkms refusal.
pub const ERROR_DOMAIN: &str = "snpkms.v1";

/// The gRPC code of a refusal.
pub fn code(e: &ReleaseError) -> Code {
    match e.refusal() {
        Refusal::InvalidArgument => Code::InvalidArgument,
        Refusal::Unauthenticated => Code::Unauthenticated,
        Refusal::FailedPrecondition => Code::FailedPrecondition,
        Refusal::PermissionDenied => Code::PermissionDenied,
        Refusal::Unavailable => Code::Unavailable,
        Refusal::ResourceExhausted => Code::ResourceExhausted,
        Refusal::Internal => Code::Internal,
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

#[cfg(test)]
mod tests {
    use super::*;
    use snpkms_core::{AuthorizerError, BlockRef, RequestError};
    use std::time::Duration;
    use tonic_types::StatusExt;

    fn unavailable(internal: bool) -> ReleaseError {
        ReleaseError::Registry(AuthorizerError {
            kind: "x",
            internal,
            source: "down".into(),
        })
    }

    #[test]
    fn every_refusal_has_its_code() {
        let block = BlockRef {
            number: 7,
            hash: [0xab; 32],
        };
        for (e, want) in [
            (
                ReleaseError::Request(RequestError::MissingEvidence),
                Code::InvalidArgument,
            ),
            (
                ReleaseError::EpochAhead {
                    requested: 2,
                    current: 1,
                },
                Code::InvalidArgument,
            ),
            (
                ReleaseError::Nonce(snpkms_core::NonceError::Length(3)),
                Code::InvalidArgument,
            ),
            (
                ReleaseError::Nonce(snpkms_core::NonceError::Unknown),
                Code::FailedPrecondition,
            ),
            (
                ReleaseError::ReportDataMismatch { binding: "x" },
                Code::FailedPrecondition,
            ),
            (
                ReleaseError::Denied {
                    reason: "os image not allowed".into(),
                    block,
                },
                Code::PermissionDenied,
            ),
            (unavailable(false), Code::Unavailable),
            (unavailable(true), Code::Internal),
            (ReleaseError::NotServing("no".into()), Code::Unavailable),
            (
                ReleaseError::RateLimited {
                    scope: RateLimitScope::App([1; 20]),
                    retry_after: Duration::from_millis(250),
                },
                Code::ResourceExhausted,
            ),
        ] {
            assert_eq!(status(&e).code(), want, "{e}");
        }
    }

    #[test]
    fn a_refusal_carries_typed_details() {
        let e = ReleaseError::Denied {
            reason: "compose hash not allowed".into(),
            block: BlockRef {
                number: 42,
                hash: [0xab; 32],
            },
        };
        let s = status(&e);
        let info = s.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "DENIED");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(info.metadata["registry_reason"], "compose hash not allowed");
        assert_eq!(info.metadata["block_number"], "42");
        assert_eq!(
            info.metadata["block_hash"],
            format!("0x{}", "ab".repeat(32))
        );

        let e = ReleaseError::RateLimited {
            scope: RateLimitScope::App([1; 20]),
            retry_after: Duration::from_millis(250),
        };
        let info = status(&e).get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.metadata["retry_after_ms"], "250");
        assert_eq!(info.metadata["scope"], "app");
    }
}
