//! GetAppKey's first, stateless steps: exact field lengths, then the binding of verified
//! evidence to the request. Pure, so the fuzzer runs them on decoded bytes.

use crate::error::{ReleaseError, RequestError};
use snpkms_api::{binding, pb};
use snpkms_verifier::{BootInfo, VerifiedReport};

/// The binding a GetAppKey report must carry.
pub const GET_APP_KEY_BINDING: &str =
    "SHA-512(\"snpkms/get-app-key/v1\" || nonce || ephemeral_public_key)";
/// The binding a SignAppKey report must carry.
pub const SIGN_APP_KEY_BINDING: &str =
    "SHA-512(\"snpkms/sign-app-key/v2\" || nonce || app_signing_address || key_epoch)";
/// The binding an onboarding report must carry.
pub const ONBOARD_BINDING: &str =
    "SHA-512(\"snpkms/onboard/v2\" || nonce || ephemeral_public_key || config_digest)";

/// `bytes` as exactly `N` bytes, or which field was how long.
pub(crate) fn fixed<const N: usize>(
    bytes: &[u8],
    field: &'static str,
) -> Result<[u8; N], RequestError> {
    bytes.try_into().map_err(|_| RequestError::Length {
        field,
        expected: N,
        got: bytes.len(),
    })
}

/// The fixed-size fields of a GetAppKey request, length-checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatedRequest {
    /// The app's id (its AppAuth address).
    pub app_id: [u8; 20],
    /// SHA-256 of the compose the guest runs.
    pub compose_hash: [u8; 32],
    /// X25519 key the answer is sealed to.
    pub ephemeral_public_key: [u8; 32],
    /// The challenge.
    pub nonce: [u8; 32],
}

/// Every field has its exact length, so nothing later truncates or pads what the peer sent.
pub fn validate_request(req: &pb::GetAppKeyRequest) -> Result<ValidatedRequest, ReleaseError> {
    Ok(ValidatedRequest {
        app_id: fixed(&req.app_id, "app_id")?,
        compose_hash: fixed(&req.compose_hash, "compose_hash")?,
        ephemeral_public_key: fixed(&req.ephemeral_public_key, "ephemeral_public_key")?,
        nonce: fixed(&req.nonce, "nonce")?,
    })
}

impl ValidatedRequest {
    /// Ties verified evidence to this request (pure): the report must be made for this nonce
    /// (no replay) and this ephemeral key (only the requester can open the answer), and its
    /// host_data must commit to the claimed app and compose (no asking for another app's keys).
    pub fn boot_info(&self, report: &VerifiedReport) -> Result<BootInfo, ReleaseError> {
        if report.report_data
            != binding::get_app_key_report_data(&self.nonce, &self.ephemeral_public_key)
        {
            return Err(ReleaseError::ReportDataMismatch {
                binding: GET_APP_KEY_BINDING,
            });
        }
        Ok(BootInfo::for_app(report, self.app_id, self.compose_hash)?)
    }
}

/// The fixed-size fields of a SignAppKey request (the threshold mode's KMS signature),
/// length-checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatedSignRequest {
    /// The app's id (its AppAuth address).
    pub app_id: [u8; 20],
    /// SHA-256 of the compose the guest runs.
    pub compose_hash: [u8; 32],
    /// The address the guest asks the node to vouch for.
    pub app_signing_address: [u8; 20],
    /// The key epoch it derived the address at.
    pub key_epoch: u32,
    /// The challenge.
    pub nonce: [u8; 32],
}

/// As [`validate_request`], for SignAppKey.
pub fn validate_sign_request(
    req: &pb::SignAppKeyRequest,
) -> Result<ValidatedSignRequest, ReleaseError> {
    Ok(ValidatedSignRequest {
        app_id: fixed(&req.app_id, "app_id")?,
        compose_hash: fixed(&req.compose_hash, "compose_hash")?,
        app_signing_address: fixed(&req.app_signing_address, "app_signing_address")?,
        key_epoch: req.key_epoch,
        nonce: fixed(&req.nonce, "nonce")?,
    })
}

impl ValidatedSignRequest {
    /// Ties verified evidence to this request (pure): made for this nonce, this address and
    /// this epoch, by an instance of the claimed app and compose.
    pub fn boot_info(&self, report: &VerifiedReport) -> Result<BootInfo, ReleaseError> {
        if report.report_data
            != binding::sign_app_key_report_data(
                &self.nonce,
                &self.app_signing_address,
                self.key_epoch,
            )
        {
            return Err(ReleaseError::ReportDataMismatch {
                binding: SIGN_APP_KEY_BINDING,
            });
        }
        Ok(BootInfo::for_app(report, self.app_id, self.compose_hash)?)
    }
}

/// What the node's admission checks need of an app's request, whichever exchange it is.
pub(crate) trait AppRequest {
    /// The app the request names.
    fn app_id(&self) -> [u8; 20];
    /// Its challenge.
    fn nonce(&self) -> &[u8; 32];
    /// Its evidence tied to it ([`ValidatedRequest::boot_info`]).
    fn bound_boot_info(&self, report: &VerifiedReport) -> Result<BootInfo, ReleaseError>;
    /// The app signing address it asks to be vouched for (SignAppKey only).
    fn app_signing_address(&self) -> Option<[u8; 20]> {
        None
    }
}

impl AppRequest for ValidatedRequest {
    fn app_id(&self) -> [u8; 20] {
        self.app_id
    }
    fn nonce(&self) -> &[u8; 32] {
        &self.nonce
    }
    fn bound_boot_info(&self, report: &VerifiedReport) -> Result<BootInfo, ReleaseError> {
        self.boot_info(report)
    }
}

impl AppRequest for ValidatedSignRequest {
    fn app_id(&self) -> [u8; 20] {
        self.app_id
    }
    fn nonce(&self) -> &[u8; 32] {
        &self.nonce
    }
    fn bound_boot_info(&self, report: &VerifiedReport) -> Result<BootInfo, ReleaseError> {
        self.boot_info(report)
    }
    fn app_signing_address(&self) -> Option<[u8; 20]> {
        Some(self.app_signing_address)
    }
}
