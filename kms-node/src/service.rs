//! The gRPC face of the node core: client limits, call, status, count. Nothing here decides a
//! release.

use crate::adapters::Node;
use crate::config::Limits;
use crate::metrics::Metrics;
use crate::status::status;
use snpkms_api::pb;
use snpkms_core::{RateLimitScope, RateLimiter, ReleaseError};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;
use tonic::{Request, Response, Status};

/// The methods of `snpkms.v1.Kms`, as metrics label them.
pub const METHODS: [&str; 7] = [
    "GetChallenge",
    "GetAppKey",
    "GetAppKeyShare",
    "SignAppKey",
    "Onboard",
    "GetKmsInfo",
    "GetAuditHead",
];

/// Set by a handler when it has counted its answer, so the router's layer counts every other
/// request itself ([`crate::wire_status`]): refused before a handler, timed out or cancelled.
#[derive(Debug, Clone, Default)]
pub struct Counted(Arc<std::sync::atomic::AtomicBool>);

impl Counted {
    fn mark(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// A handler counted this request.
    pub fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// One handler's call: its clock, and the flag it sets once it counted the answer.
struct Call {
    started: Instant,
    counted: Option<Counted>,
}

/// A handler starts.
fn enter<T>(request: &Request<T>) -> Call {
    Call {
        started: Instant::now(),
        counted: request.extensions().get::<Counted>().cloned(),
    }
}

/// The `snpkms.v1.Kms` service.
pub struct KmsService {
    node: Arc<Node>,
    metrics: Arc<Metrics>,
    per_client: RateLimiter<IpAddr>,
    chain_id: u64,
    registry: [u8; 20],
}

impl KmsService {
    /// The service of `node`, with the configured client limits.
    pub fn new(node: Arc<Node>, metrics: Arc<Metrics>, limits: &Limits) -> KmsService {
        let chain = &node.authorizer().0;
        let (chain_id, registry) = (chain.chain_id(), chain.registry().0 .0);
        KmsService {
            node,
            metrics,
            per_client: RateLimiter::new(limits.per_client_rate, limits.per_client_burst),
            chain_id,
            registry,
        }
    }

    /// Per-client limit, by the peer's IP address (behind a proxy, that is the proxy's).
    fn limit_client<T>(&self, request: &Request<T>) -> Result<(), ReleaseError> {
        let Some(ip) = request.remote_addr().map(|a| a.ip()) else {
            return Ok(());
        };
        self.per_client
            .check(&ip, Instant::now())
            .map_err(|retry_after| ReleaseError::RateLimited {
                scope: RateLimitScope::Client(ip),
                retry_after,
            })
    }

    fn finish<T>(
        &self,
        method: &'static str,
        call: Call,
        result: Result<T, ReleaseError>,
    ) -> Result<Response<T>, Status> {
        if let Some(counted) = &call.counted {
            counted.mark();
        }
        let started = call.started;
        match result {
            Ok(v) => {
                self.metrics
                    .observe_request(method, tonic::Code::Ok, started.elapsed());
                Ok(Response::new(v))
            }
            Err(e) => {
                let status = status(&e);
                self.metrics
                    .observe_request(method, status.code(), started.elapsed());
                // The message is what the client sees too; it never holds key material.
                tracing::info!(method, code = ?status.code(), reason = e.label(), "refused: {e}");
                Err(status)
            }
        }
    }
}

#[tonic::async_trait]
impl pb::kms_server::Kms for KmsService {
    async fn get_challenge(
        &self,
        request: Request<pb::GetChallengeRequest>,
    ) -> Result<Response<pb::GetChallengeResponse>, Status> {
        let call = enter(&request);
        let result = self
            .limit_client(&request)
            .and_then(|()| self.node.challenge());
        self.finish("GetChallenge", call, result)
    }

    async fn get_app_key(
        &self,
        request: Request<pb::GetAppKeyRequest>,
    ) -> Result<Response<pb::GetAppKeyResponse>, Status> {
        let call = enter(&request);
        // The per-app limit is the core's, after the evidence binds the request to the app.
        let result = match self.limit_client(&request) {
            Err(e) => Err(e),
            Ok(()) => self.node.get_app_key(request.into_inner()).await,
        };
        if let Ok(r) = &result {
            tracing::info!(
                epoch = r.key_epoch,
                block = r.block_number,
                app_signing_address = %hex::encode(&r.app_signing_address),
                "app key released"
            );
        }
        self.finish("GetAppKey", call, result)
    }

    async fn get_app_key_share(
        &self,
        request: Request<pb::GetAppKeyRequest>,
    ) -> Result<Response<pb::GetAppKeyShareResponse>, Status> {
        let call = enter(&request);
        let result = match self.limit_client(&request) {
            Err(e) => Err(e),
            Ok(()) => self.node.get_app_key_share(request.into_inner()).await,
        };
        if let Ok(r) = &result {
            tracing::info!(
                epoch = r.key_epoch,
                share_epoch = r.share_epoch,
                block = r.block_number,
                "app key partial released"
            );
        }
        self.finish("GetAppKeyShare", call, result)
    }

    async fn sign_app_key(
        &self,
        request: Request<pb::SignAppKeyRequest>,
    ) -> Result<Response<pb::SignAppKeyResponse>, Status> {
        let call = enter(&request);
        let result = match self.limit_client(&request) {
            Err(e) => Err(e),
            Ok(()) => self.node.sign_app_key(request.into_inner()).await,
        };
        if let Ok(r) = &result {
            tracing::info!(
                epoch = r.key_epoch,
                share_epoch = r.share_epoch,
                block = r.block_number,
                "app signing address vouched for"
            );
        }
        self.finish("SignAppKey", call, result)
    }

    async fn onboard(
        &self,
        request: Request<pb::OnboardRequest>,
    ) -> Result<Response<pb::OnboardResponse>, Status> {
        let call = enter(&request);
        let result = match self.limit_client(&request) {
            Err(e) => Err(e),
            Ok(()) => self.node.onboard(request.into_inner()).await,
        };
        self.finish("Onboard", call, result)
    }

    async fn get_kms_info(
        &self,
        request: Request<pb::GetKmsInfoRequest>,
    ) -> Result<Response<pb::GetKmsInfoResponse>, Status> {
        let call = enter(&request);
        self.finish(
            "GetKmsInfo",
            call,
            Ok(self.node.kms_info(self.chain_id, self.registry)),
        )
    }

    async fn get_audit_head(
        &self,
        request: Request<pb::GetAuditHeadRequest>,
    ) -> Result<Response<pb::GetAuditHeadResponse>, Status> {
        let call = enter(&request);
        let result = self
            .limit_client(&request)
            .map(|()| match self.node.log().signed_head() {
                Some(signed) => pb::GetAuditHeadResponse {
                    records: signed.head.records,
                    hash: signed.head.hash.to_vec(),
                    signature: signed.signature,
                },
                None => pb::GetAuditHeadResponse {
                    records: 0,
                    hash: vec![0; 32],
                    signature: vec![],
                },
            });
        self.finish("GetAuditHead", call, result)
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    /// The metric labels name every method of the proto's Kms service, and only those: a
    /// method added to the proto without a label would be counted as "unknown".
    #[test]
    fn methods_are_the_proto_services_methods() {
        let set = prost_types::FileDescriptorSet::decode(snpkms_api::FILE_DESCRIPTOR_SET)
            .expect("the compiled descriptor set decodes");
        let kms = (set.file.iter())
            .filter(|file| file.package() == "snpkms.v1")
            .flat_map(|file| file.service.iter())
            .find(|service| service.name() == "Kms")
            .expect("service snpkms.v1.Kms");
        let mut proto: Vec<&str> = kms.method.iter().map(|m| m.name()).collect();
        let mut labels = super::METHODS.to_vec();
        proto.sort_unstable();
        labels.sort_unstable();
        assert_eq!(labels, proto);
    }
}
