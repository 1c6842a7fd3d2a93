//! The gRPC face of [`Node`]: decode, call, map errors to statuses, count.

use crate::error::ReleaseError;
use crate::release::Node;
use snpkms_api::pb;
use std::sync::Arc;
use std::time::Instant;
use tonic::{Request, Response, Status};

pub struct KmsService {
    node: Arc<Node>,
}

impl KmsService {
    pub fn new(node: Arc<Node>) -> KmsService {
        KmsService { node }
    }

    fn finish<T>(
        &self,
        method: &'static str,
        started: Instant,
        result: Result<T, ReleaseError>,
    ) -> Result<Response<T>, Status> {
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(e) => e.code(),
        };
        self.node
            .metrics
            .observe_request(method, code, started.elapsed());
        match result {
            Ok(v) => Ok(Response::new(v)),
            Err(e) => {
                // The message is what the client sees too; it never holds key material.
                tracing::info!(method, code = ?e.code(), reason = e.label(), "refused: {e}");
                Err(e.into())
            }
        }
    }
}

#[tonic::async_trait]
impl pb::kms_server::Kms for KmsService {
    async fn get_challenge(
        &self,
        _request: Request<pb::GetChallengeRequest>,
    ) -> Result<Response<pb::GetChallengeResponse>, Status> {
        let started = Instant::now();
        self.finish("GetChallenge", started, self.node.challenge())
    }

    async fn get_app_key(
        &self,
        request: Request<pb::GetAppKeyRequest>,
    ) -> Result<Response<pb::GetAppKeyResponse>, Status> {
        let started = Instant::now();
        let result = self.node.get_app_key(request.into_inner()).await;
        if let Ok(r) = &result {
            tracing::info!(
                epoch = r.key_epoch,
                block = r.block_number,
                app_signing_address = %hex::encode(&r.app_signing_address),
                "app key released"
            );
        }
        self.finish("GetAppKey", started, result)
    }

    async fn onboard(
        &self,
        request: Request<pb::OnboardRequest>,
    ) -> Result<Response<pb::OnboardResponse>, Status> {
        let started = Instant::now();
        let result = self.node.onboard(request.into_inner()).await;
        self.finish("Onboard", started, result)
    }

    async fn get_kms_info(
        &self,
        _request: Request<pb::GetKmsInfoRequest>,
    ) -> Result<Response<pb::GetKmsInfoResponse>, Status> {
        let started = Instant::now();
        self.finish("GetKmsInfo", started, Ok(self.node.kms_info()))
    }
}
