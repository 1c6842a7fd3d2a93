//! GetAppKey from the guest's side: challenge, ephemeral key, bound report, request, open the
//! sealed keys, and check that the KMS root key vouches for what came back.

use k256::ecdsa::SigningKey;
use snpkms_api::pb::kms_client::KmsClient;
use snpkms_api::pb::{self, AppKeys};
use snpkms_api::seal::{self, EphemeralKeyPair, Sealed};
use snpkms_api::{app_key_signature, binding};
use zeroize::Zeroizing;

use snpkms_platform::{Attestor, PlatformError};

/// Why the guest got no keys. Every variant but [`Refused`](Self::Refused) and
/// [`Connect`](Self::Connect) means the response (or the local evidence) was unusable: nothing
/// of it is returned.
#[derive(Debug, thiserror::Error)]
pub enum GuestClientError {
    /// No gRPC connection to the KMS (bad URL, unreachable, or TLS failed).
    #[error("cannot connect to the KMS at {url}: {message}")]
    Connect {
        /// The KMS URL given.
        url: String,
        /// The transport's error.
        message: String,
    },
    /// The KMS answered with a gRPC error (README, "Errors", lists what each code means).
    #[error("KMS refused: {code:?}: {message}")]
    Refused {
        /// The gRPC status code.
        code: tonic::Code,
        /// The node's message: which check failed, or the registry's reason and block.
        message: String,
    },
    /// This guest's platform produced no evidence (no SNP device, or the request failed).
    #[error("evidence: {0}")]
    Evidence(#[from] PlatformError),
    /// The sealed keys did not open with this request's ephemeral key, nonce and context:
    /// tampered, or meant for another request.
    #[error("the response did not open with our ephemeral key: {0}")]
    Open(#[from] seal::SealError),
    /// A field has the wrong length or encoding, or the released signing key does not match
    /// the app signing address the KMS signed.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The KMS signature is malformed or recovers to no key.
    #[error("KMS signature: {0}")]
    Signature(#[from] app_key_signature::SignatureError),
    /// The KMS signature is valid but not by the expected root: whoever answered is not the
    /// trusted KMS.
    #[error("the KMS signature is by {actual}, not by the expected KMS root {expected}")]
    WrongSigner {
        /// The root the caller trusts, `0x…`.
        expected: String,
        /// The address that signed, `0x…`.
        actual: String,
    },
    /// The KMS answered with keys of another epoch than the one asked for.
    #[error("asked for the keys of epoch {requested}, the KMS answered with epoch {answered}")]
    EpochMismatch {
        /// The epoch in the request.
        requested: u32,
        /// The epoch of the keys that came back.
        answered: u32,
    },
}

impl From<tonic::Status> for GuestClientError {
    fn from(s: tonic::Status) -> Self {
        GuestClientError::Refused {
            code: s.code(),
            message: s.message().to_string(),
        }
    }
}

/// Keys released to this guest, with the proof of where they came from.
///
/// The three secrets are wiped on drop; the rest is public.
pub struct AppKeyGrant {
    /// The app's 32-byte symmetric disk-encryption key.
    pub disk_key: Zeroizing<[u8; 32]>,
    /// The app's X25519 secret key, for its encrypted environment variables.
    pub env_secret_key: Zeroizing<[u8; 32]>,
    /// The app's secp256k1 signing key (big-endian scalar); its address is
    /// [`Self::app_signing_address`] (checked).
    pub signing_key: Zeroizing<[u8; 32]>,
    /// The key epoch these keys belong to.
    pub key_epoch: u32,
    /// Ethereum address of [`Self::signing_key`].
    pub app_signing_address: [u8; 20],
    /// The KMS root key's signature `r || s || v` over app id, app signing address and epoch
    /// (see `snpkms_api::app_key_signature`): anyone can check it with
    /// `KmsRegistry.verifyAppKey`.
    pub kms_signature: [u8; 65],
    /// The KMS root signing address that made [`Self::kms_signature`] (checked against the
    /// expected root).
    pub kms_root_signing_address: [u8; 20],
    /// The block the node read the registry's decision at.
    pub block_number: u64,
    /// That block's hash, as the node sent it (32 bytes from a well-behaved node; not checked).
    pub block_hash: Vec<u8>,
}

/// A connection to one KMS node.
pub struct GuestClient {
    url: String,
    inner: KmsClient<tonic::transport::Channel>,
}

fn array<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], GuestClientError> {
    bytes.try_into().map_err(|_| {
        GuestClientError::Malformed(format!("{what} is {} bytes, expected {N}", bytes.len()))
    })
}

impl GuestClient {
    /// Connects with no TLS settings of its own (an `http://` URL; [`Self::connect_tls`] pins the
    /// node's CA). The keys are HPKE-sealed to each request's ephemeral key and signed by the KMS
    /// root either way; without TLS the request metadata (app id, compose hash) is in the clear.
    pub async fn connect(url: &str) -> Result<GuestClient, GuestClientError> {
        let inner =
            KmsClient::connect(url.to_string())
                .await
                .map_err(|e| GuestClientError::Connect {
                    url: url.to_string(),
                    message: e.to_string(),
                })?;
        Ok(GuestClient {
            url: url.to_string(),
            inner,
        })
    }

    /// Connects over TLS, trusting `ca_pem` (the node's certificate or its CA). The response is
    /// HPKE-sealed either way; TLS adds transport privacy for the request metadata.
    pub async fn connect_tls(url: &str, ca_pem: &[u8]) -> Result<GuestClient, GuestClientError> {
        let err = |e: &dyn std::fmt::Display| GuestClientError::Connect {
            url: url.to_string(),
            message: e.to_string(),
        };
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(ca_pem));
        let channel = tonic::transport::Endpoint::from_shared(url.to_string())
            .map_err(|e| err(&e))?
            .tls_config(tls)
            .map_err(|e| err(&e))?
            .connect()
            .await
            .map_err(|e| err(&e))?;
        Ok(GuestClient {
            url: url.to_string(),
            inner: KmsClient::new(channel),
        })
    }

    /// The URL this client connected to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// GetKmsInfo: what the node *says* about itself (root, TLS key, epoch, chain, registry,
    /// configuration digest). Unauthenticated: never take the root to trust from here.
    pub async fn kms_info(&mut self) -> Result<pb::GetKmsInfoResponse, GuestClientError> {
        Ok(self
            .inner
            .get_kms_info(pb::GetKmsInfoRequest {})
            .await?
            .into_inner())
    }

    /// GetAuditHead: the head of the node's key-release log, signed by its root key. Keep it:
    /// a later copy of the log must extend it (`snpkms node audit-log --check-head`). Check
    /// [`SignedAuditHead::signer`](snpkms_api::audit_head::SignedAuditHead::signer) against the
    /// registry's root; what the node says about itself proves nothing.
    pub async fn audit_head(
        &mut self,
    ) -> Result<snpkms_api::audit_head::SignedAuditHead, GuestClientError> {
        let r = self
            .inner
            .get_audit_head(pb::GetAuditHeadRequest {})
            .await?
            .into_inner();
        let hash: [u8; 32] = r
            .hash
            .try_into()
            .map_err(|_| GuestClientError::Malformed("audit head hash is not 32 bytes".into()))?;
        Ok(snpkms_api::audit_head::SignedAuditHead {
            head: snpkms_api::audit_head::AuditHead {
                records: r.records,
                hash,
            },
            signature: r.signature,
        })
    }

    /// Runs the whole GetAppKey exchange. `expected_root` is the KMS root signing address the
    /// caller trusts, from the chain or its own configuration, never from the KMS: whoever sits
    /// on the guest's network could answer as a KMS and name a root it holds. The grant is
    /// refused unless the KMS signature is by `expected_root`.
    pub async fn get_app_key(
        &mut self,
        source: &dyn Attestor,
        app_id: [u8; 20],
        compose_hash: [u8; 32],
        epoch: Option<u32>,
        expected_root: [u8; 20],
    ) -> Result<AppKeyGrant, GuestClientError> {
        let challenge = self
            .inner
            .get_challenge(pb::GetChallengeRequest {})
            .await?
            .into_inner();
        let ephemeral = EphemeralKeyPair::generate();
        let report_data =
            binding::get_app_key_report_data(&challenge.nonce, &ephemeral.public_key());
        let evidence = source.attest(report_data)?;
        let response = self
            .inner
            .get_app_key(pb::GetAppKeyRequest {
                evidence: Some(pb::Evidence {
                    report: evidence.report,
                    cert_table: evidence.cert_table,
                }),
                nonce: challenge.nonce.clone(),
                app_id: app_id.to_vec(),
                compose_hash: compose_hash.to_vec(),
                ephemeral_public_key: ephemeral.public_key().to_vec(),
                epoch,
            })
            .await?
            .into_inner();
        open_grant(
            &ephemeral,
            &challenge.nonce,
            app_id,
            compose_hash,
            epoch,
            response,
            expected_root,
        )
    }

    /// Asks this node for its partial (the threshold mode's GetAppKeyShare), with a request
    /// bound to this node's challenge and to `ephemeral` (one key for every node of one
    /// combination). Never fails: a node that is down or refuses is an answer whose result
    /// says why, for [`crate::threshold::combine_answers`] to skip and name.
    pub async fn get_app_key_share(
        &mut self,
        source: &dyn Attestor,
        app_id: [u8; 20],
        compose_hash: [u8; 32],
        epoch: Option<u32>,
        ephemeral: &EphemeralKeyPair,
    ) -> crate::threshold::NodeAnswer {
        let mut nonce = Vec::new();
        let result = async {
            let challenge = self
                .inner
                .get_challenge(pb::GetChallengeRequest {})
                .await
                .map_err(|s| format!("challenge refused: {:?}: {}", s.code(), s.message()))?
                .into_inner();
            nonce = challenge.nonce.clone();
            let evidence = source
                .attest(binding::get_app_key_report_data(
                    &challenge.nonce,
                    &ephemeral.public_key(),
                ))
                .map_err(|e| format!("this guest's evidence: {e}"))?;
            self.inner
                .get_app_key_share(pb::GetAppKeyRequest {
                    evidence: Some(pb::Evidence {
                        report: evidence.report,
                        cert_table: evidence.cert_table,
                    }),
                    nonce: challenge.nonce,
                    app_id: app_id.to_vec(),
                    compose_hash: compose_hash.to_vec(),
                    ephemeral_public_key: ephemeral.public_key().to_vec(),
                    epoch,
                })
                .await
                .map(tonic::Response::into_inner)
                .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
        }
        .await;
        crate::threshold::NodeAnswer {
            node: self.url.clone(),
            nonce,
            result,
        }
    }

    /// Asks this node to vouch for `app_signing_address` at `key_epoch` (the threshold mode's
    /// SignAppKey), with fresh evidence bound to both. Never fails, like
    /// [`GuestClient::get_app_key_share`]: [`crate::threshold::collect_signatures`] checks and
    /// names each answer.
    pub async fn sign_app_key(
        &mut self,
        source: &dyn Attestor,
        app_id: [u8; 20],
        compose_hash: [u8; 32],
        key_epoch: u32,
        app_signing_address: [u8; 20],
    ) -> crate::threshold::SignatureAnswer {
        let result = async {
            let challenge = self
                .inner
                .get_challenge(pb::GetChallengeRequest {})
                .await
                .map_err(|s| format!("challenge refused: {:?}: {}", s.code(), s.message()))?
                .into_inner();
            let evidence = source
                .attest(binding::sign_app_key_report_data(
                    &challenge.nonce,
                    &app_signing_address,
                    key_epoch,
                ))
                .map_err(|e| format!("this guest's evidence: {e}"))?;
            self.inner
                .sign_app_key(pb::SignAppKeyRequest {
                    evidence: Some(pb::Evidence {
                        report: evidence.report,
                        cert_table: evidence.cert_table,
                    }),
                    nonce: challenge.nonce,
                    app_id: app_id.to_vec(),
                    compose_hash: compose_hash.to_vec(),
                    app_signing_address: app_signing_address.to_vec(),
                    key_epoch,
                })
                .await
                .map(tonic::Response::into_inner)
                .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
        }
        .await;
        crate::threshold::SignatureAnswer {
            node: self.url.clone(),
            result,
        }
    }
}

/// Opens and checks a GetAppKey response against the KMS root the caller trusts, and against
/// the epoch the request asked for (`None`: the current one, whichever the KMS answers).
pub fn open_grant(
    ephemeral: &EphemeralKeyPair,
    nonce: &[u8],
    app_id: [u8; 20],
    compose_hash: [u8; 32],
    requested_epoch: Option<u32>,
    response: pb::GetAppKeyResponse,
    expected_root: [u8; 20],
) -> Result<AppKeyGrant, GuestClientError> {
    if let Some(requested) = requested_epoch {
        if response.key_epoch != requested {
            return Err(GuestClientError::EpochMismatch {
                requested,
                answered: response.key_epoch,
            });
        }
    }
    let aad = seal::app_keys_aad(&app_id, &compose_hash, response.key_epoch, nonce);
    let plaintext = ephemeral.open(
        seal::APP_KEYS_INFO,
        &aad,
        &Sealed {
            encapsulated_key: response.encapsulated_key,
            ciphertext: response.sealed_keys,
        },
    )?;
    let keys = <AppKeys as prost::Message>::decode(plaintext.as_slice())
        .map_err(|e| GuestClientError::Malformed(format!("AppKeys: {e}")))?;
    let grant = AppKeyGrant {
        disk_key: Zeroizing::new(array(&keys.disk_key, "disk_key")?),
        env_secret_key: Zeroizing::new(array(&keys.env_secret_key, "env_secret_key")?),
        signing_key: Zeroizing::new(array(&keys.signing_key, "signing_key")?),
        key_epoch: response.key_epoch,
        app_signing_address: array(&response.app_signing_address, "app_signing_address")?,
        kms_signature: array(&response.kms_signature, "kms_signature")?,
        kms_root_signing_address: array(
            &response.kms_root_signing_address,
            "kms_root_signing_address",
        )?,
        block_number: response.block_number,
        block_hash: response.block_hash,
    };

    // The signing key we got must be the one the KMS vouched for, and the voucher must be
    // from the KMS root we trust.
    let signing = SigningKey::from_slice(grant.signing_key.as_slice())
        .map_err(|_| GuestClientError::Malformed("signing_key is not a secp256k1 key".into()))?;
    if app_key_signature::address_of(signing.verifying_key()) != grant.app_signing_address {
        return Err(GuestClientError::Malformed(
            "signing_key does not match app_signing_address".into(),
        ));
    }
    let signer = app_key_signature::recover(
        &app_id,
        &grant.app_signing_address,
        grant.key_epoch,
        &grant.kms_signature,
    )?;
    if signer == expected_root && signer != grant.kms_root_signing_address {
        return Err(GuestClientError::Malformed(format!(
            "kms_root_signing_address names 0x{}, but the KMS signature is by the expected root 0x{}",
            hex::encode(grant.kms_root_signing_address),
            hex::encode(expected_root)
        )));
    }
    if signer != expected_root {
        return Err(GuestClientError::WrongSigner {
            expected: format!("0x{}", hex::encode(expected_root)),
            actual: format!("0x{}", hex::encode(signer)),
        });
    }
    Ok(grant)
}
