//! The participant's `KeyGen` service: its round-1 message from the start, and each peer's
//! round-2 package once this participant has checked every round-1 message. It holds nothing
//! secret in the clear: round-2 packages are sealed to their recipients' attested keys.

use snpkms_api::pb;
use snpkms_api::pb::key_gen_server::KeyGen;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

/// What the service publishes, and which peers have fetched their package.
pub struct Published {
    session: [u8; 32],
    round1: pb::KeyGenRound1,
    round2: Mutex<Option<BTreeMap<u16, pb::KeyGenRound2>>>,
    delivered: Mutex<BTreeSet<u16>>,
    /// Woken at each delivery.
    pub delivery: Notify,
}

impl Published {
    pub fn new(session: [u8; 32], round1: pb::KeyGenRound1) -> Published {
        Published {
            session,
            round1,
            round2: Mutex::new(None),
            delivered: Mutex::new(BTreeSet::new()),
            delivery: Notify::new(),
        }
    }

    /// Publishes the sealed round-2 packages, by recipient.
    pub fn publish_round2(&self, packages: BTreeMap<u16, pb::KeyGenRound2>) {
        *self.round2.lock().unwrap_or_else(|e| e.into_inner()) = Some(packages);
    }

    /// The recipients that have fetched their package.
    pub fn delivered(&self) -> BTreeSet<u16> {
        self.delivered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn check_session(&self, session: &[u8]) -> Result<(), Status> {
        if session != self.session {
            return Err(Status::not_found(format!(
                "this participant runs key generation session 0x{}, not 0x{}",
                hex::encode(self.session),
                hex::encode(session)
            )));
        }
        Ok(())
    }
}

/// The tonic service over [`Published`].
pub struct KeyGenService(pub std::sync::Arc<Published>);

#[tonic::async_trait]
impl KeyGen for KeyGenService {
    async fn get_key_gen_round1(
        &self,
        request: Request<pb::GetKeyGenRound1Request>,
    ) -> Result<Response<pb::KeyGenRound1>, Status> {
        self.0.check_session(&request.get_ref().session)?;
        Ok(Response::new(self.0.round1.clone()))
    }

    async fn get_key_gen_round2(
        &self,
        request: Request<pb::GetKeyGenRound2Request>,
    ) -> Result<Response<pb::KeyGenRound2>, Status> {
        let request = request.into_inner();
        self.0.check_session(&request.session)?;
        let package = {
            let round2 = self.0.round2.lock().unwrap_or_else(|e| e.into_inner());
            let Some(round2) = round2.as_ref() else {
                return Err(Status::unavailable(
                    "this participant has not yet checked every round-1 message",
                ));
            };
            u16::try_from(request.to)
                .ok()
                .and_then(|to| round2.get(&to).cloned())
                .ok_or_else(|| {
                    Status::not_found(format!("no participant {} in this session", request.to))
                })?
        };
        self.0
            .delivered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(package.to as u16);
        self.0.delivery.notify_waiters();
        Ok(Response::new(package))
    }
}
