//! `snpkms node keygen`: the threshold mode's distributed key generation (FROST's DKG) among n
//! attested KMS nodes, no dealer. Each participant runs it once, into an empty data dir, with
//! the same session id, threshold and list of peers:
//!
//! 1. It makes its round-1 package and an ephemeral X25519 key, and binds both (with the
//!    session, its index, the threshold, the number of participants and its configuration
//!    digest) into its own SNP evidence; it serves that message ([`service`]).
//! 2. It fetches every peer's round-1 message and checks each as it arrives ([`peer`]): genuine
//!    evidence under its trust roots and policy, bound to the message, from a KMS the registry
//!    allows with the digest it names. One peer that fails ends the key generation: there is no
//!    share set without every participant.
//! 3. It publishes its round-2 package for each peer, sealed to that peer's attested key, and
//!    fetches each peer's package for itself (checked against its sender's commitments).
//! 4. It seals its share (like a root: platform key and configuration digest) into a new store,
//!    binds its result (group key, every verifying share, its signing address, the transcript
//!    of round-1 messages it saw) into evidence, keeps serving until every peer has its round-2
//!    package (or the deadline), and prints the result ([`KeyGenOutput`]).
//!
//! The host relays every message and may drop or delay them (the key generation then fails or
//! times out) or show different peers different messages of a participant it runs twice (their
//! transcripts then differ and [`check_keygen`] refuses the outputs); it cannot read a share or
//! put in one of its own.

mod output;
mod peer;
mod service;

pub use output::{
    check_keygen, CheckedGroup, CheckedMember, KeyGenCheckError, KeyGenOutput, VerifyingShare,
};

use crate::adapters::Registry;
use crate::config::NodeConfig;
use crate::kds::KdsSource;
use crate::sealed_secret::{self, SealedUnder};
use crate::security::SecuritySettings;
use crate::store::Store;
use crate::{platform, NodeError};
use peer::{CheckedRound1, Expected};
use service::{KeyGenService, Published};
use snpkms_api::pb;
use snpkms_api::pb::key_gen_client::KeyGenClient;
use snpkms_api::pb::key_gen_server::KeyGenServer;
use snpkms_api::seal::EphemeralKeyPair;
use snpkms_chain_client::ChainClient;
use snpkms_core::{CertSourceError, Custody, EvidenceVerifier, NodeShare};
use snpkms_threshold::keygen;
use snpkms_verifier::UnixTime;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use zeroize::Zeroizing;

/// What the operator gives every participant (the same session, threshold and set of nodes).
#[derive(Debug, Clone)]
pub struct KeyGenPlan {
    /// 32 random bytes naming this key generation; every participant is given the same.
    pub session: [u8; 32],
    /// This participant's index, 1..=n.
    pub index: u16,
    /// The threshold t (2..=n).
    pub threshold: u16,
    /// Every other participant's KeyGen URL (`http://host:port`), by index.
    pub peers: BTreeMap<u16, String>,
    /// How long the whole key generation may take.
    pub timeout: Duration,
}

/// Why a key generation failed. Every variant about a peer names it.
#[derive(Debug, thiserror::Error)]
pub enum KeyGenError {
    /// The plan is inconsistent (indices, threshold).
    #[error("key generation plan: {0}")]
    Plan(String),
    /// The registry already records a share set: a new key generation would make a new group
    /// key (so new app keys), which the registry refuses.
    #[error("the registry already records a threshold share set (share epoch {0}); a new key generation would change every app's keys: re-share instead")]
    RegistryHasGroup(u32),
    /// A peer's message is not what the session expects.
    #[error("participant {node}: {message}")]
    Malformed {
        /// The peer's index.
        node: u16,
        /// What is wrong.
        message: String,
    },
    /// A peer's evidence does not verify.
    #[error("participant {node}: evidence rejected: {source}")]
    Evidence {
        /// The peer's index.
        node: u16,
        /// Why.
        #[source]
        source: snpkms_core::EvidenceError,
    },
    /// A peer's evidence is genuine but does not bind its message.
    #[error("participant {node}: its evidence's report_data does not bind its round-1 message")]
    NotBound {
        /// The peer's index.
        node: u16,
    },
    /// The registry does not allow a peer as a KMS.
    #[error("participant {node}: the registry does not allow it as a KMS at block {block}: {reason} (configuration digest {config_digest})")]
    Denied {
        /// The peer's index.
        node: u16,
        /// The registry's reason.
        reason: String,
        /// The block of the decision.
        block: u64,
        /// The digest the peer named.
        config_digest: String,
    },
    /// The registry could not be read.
    #[error("the registry could not be read: {0}")]
    Registry(String),
    /// The DKG itself refused a package (naming its sender) or failed.
    #[error(transparent)]
    Threshold(#[from] snpkms_threshold::ThresholdError),
    /// The deadline passed while waiting for these peers.
    #[error("timed out waiting for participant(s) {waiting:?} ({stage}); last error: {last}")]
    Timeout {
        /// Which stage.
        stage: &'static str,
        /// The peers not heard from.
        waiting: Vec<u16>,
        /// The last reason a fetch failed.
        last: String,
    },
}

/// Runs this node's part of the key generation `plan` and stores its share in `cfg.data_dir`
/// (which must hold no store).
pub async fn keygen(cfg: &NodeConfig, plan: &KeyGenPlan) -> Result<KeyGenOutput, NodeError> {
    let deadline = Instant::now() + plan.timeout;
    let path = cfg.data_dir.join("store");
    if path.exists() {
        return Err(crate::store::StoreError::AlreadyExists(path).into());
    }
    let participants = check_plan(plan)?;
    let settings = SecuritySettings::resolve(cfg)?;
    let digest = settings.digest();
    let attestor = platform::open(&cfg.platform)?;
    let chain = ChainClient::connect(settings.chain.clone()).await?;
    let group = chain.threshold_group().await?;
    if group.share_epoch != 0 {
        return Err(KeyGenError::RegistryHasGroup(group.share_epoch).into());
    }
    let registry = Registry(chain);
    let evidence = EvidenceVerifier::new(settings.verifier(), 16);
    let certificates = KdsSource(Arc::new(crate::kds::client(
        cfg,
        Arc::new(snpkms_kds::NoObserver),
    )?));

    // Round 1: this participant's message, bound into its evidence.
    let me = plan.index;
    let (round1_secret, my_package) =
        keygen::start(me, participants, plan.threshold).map_err(KeyGenError::from)?;
    let ephemeral = EphemeralKeyPair::generate();
    let own = attestor
        .attest(snpkms_api::binding::keygen_round1_report_data(
            &plan.session,
            me,
            plan.threshold,
            participants,
            &digest.0,
            &ephemeral.public_key(),
            &my_package,
        ))
        .map_err(platform::PlatformError::from)?;
    let published = Arc::new(Published::new(
        plan.session,
        pb::KeyGenRound1 {
            session: plan.session.to_vec(),
            index: me.into(),
            threshold: plan.threshold.into(),
            participants: participants.into(),
            config_digest: digest.0.to_vec(),
            ephemeral_public_key: ephemeral.public_key().to_vec(),
            package: my_package.clone(),
            evidence: Some(pb::Evidence {
                report: own.report,
                cert_table: own.cert_table,
            }),
        },
    ));
    let (stop, server) = serve(cfg.listen, published.clone()).await?;
    tracing::info!(session = %hex::encode(plan.session), index = me, threshold = plan.threshold, participants, "key generation: round 1 published");

    let result = async {
        let mut clients = BTreeMap::new();
        for (node, url) in &plan.peers {
            let endpoint = Channel::from_shared(url.clone())
                .map_err(|e| KeyGenError::Plan(format!("participant {node}'s URL {url}: {e}")))?;
            clients.insert(*node, KeyGenClient::new(endpoint.connect_lazy()));
        }
        let now = UnixTime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        );
        // Each message is checked as it arrives, so one participant the registry refuses ends
        // the key generation at every peer that reaches it, even after a peer that refused it
        // first has stopped serving.
        let checked: BTreeMap<u16, CheckedRound1> =
            fetch_all(&clients, deadline, "their round-1 messages", |node, mut c| {
                let session = plan.session.to_vec();
                let (evidence, certificates, registry) = (&evidence, &certificates, &registry);
                async move {
                    let message = c
                        .get_key_gen_round1(pb::GetKeyGenRound1Request { session })
                        .await
                        .map_err(|status| Fetch::from_status(node, status))?
                        .into_inner();
                    let expected = Expected {
                        session: &plan.session,
                        index: node,
                        threshold: plan.threshold,
                        participants,
                    };
                    let round1 =
                        peer::check_round1(&message, &expected, evidence, certificates, registry, now)
                            .await
                            .map_err(Fetch::from_check)?;
                    tracing::info!(
                        participant = node,
                        chip_id = %hex::encode(&round1.chip_id[..8]),
                        "key generation: participant's round-1 message checked (evidence, isKmsAllowed)"
                    );
                    Ok(round1)
                }
            })
            .await?;

        // Round 2: a sealed package for each peer; each peer's package for this participant.
        let theirs: BTreeMap<u16, Vec<u8>> = checked
            .iter()
            .map(|(node, c)| (*node, c.package.clone()))
            .collect();
        let (round2_secret, outgoing) = round1_secret.round2(&theirs)?;
        let mut sealed = BTreeMap::new();
        for (to, package) in &outgoing {
            let recipient = &checked[to].ephemeral_public_key;
            sealed.insert(
                *to,
                peer::seal_round2(&plan.session, me, *to, recipient, package)?,
            );
        }
        published.publish_round2(sealed);
        let incoming = fetch_all(&clients, deadline, "their round-2 packages", |node, mut c| {
            let session = plan.session.to_vec();
            async move {
                c.get_key_gen_round2(pb::GetKeyGenRound2Request {
                    session,
                    to: me.into(),
                })
                .await
                .map(tonic::Response::into_inner)
                .map_err(|status| Fetch::from_status(node, status))
            }
        })
        .await?;
        let mut opened: BTreeMap<u16, Zeroizing<Vec<u8>>> = BTreeMap::new();
        for (from, message) in incoming {
            opened.insert(
                from,
                peer::open_round2(message, &plan.session, from, me, &ephemeral)?,
            );
        }
        let (share, group) = round2_secret.finish(&opened)?;
        let mut all = theirs;
        all.insert(me, my_package);
        Ok::<_, KeyGenError>((share, group, keygen::transcript_hash(&all)))
    }
    .await;
    let (share, group, transcript) = match result {
        Ok(done) => done,
        Err(e) => {
            let _ = stop.send(());
            let _ = server.await;
            return Err(e.into());
        }
    };

    // The result: sealed, bound into evidence, then served until every peer has its package.
    let share = NodeShare::new(share);
    let shares = group.encoded_shares();
    let group_key = group.group_key();
    let signer = share.signing_address();
    let result = attestor
        .attest(snpkms_api::binding::keygen_result_report_data(
            &snpkms_api::binding::KeygenResult {
                session: &plan.session,
                transcript: &transcript,
                index: me,
                threshold: plan.threshold,
                signing_address: &signer,
                config_digest: &digest.0,
                group_key: &group_key,
                verifying_shares: &shares,
            },
        ))
        .map_err(platform::PlatformError::from)?;
    let under = SealedUnder {
        config_digest: digest,
        tcb_version: platform::committed_tcb(&result.report)?,
    };
    let sealing_key = attestor
        .sealing_key(under.tcb_version)
        .map_err(platform::PlatformError::from)?;
    Store::create_with(&cfg.data_dir, |store| {
        sealed_secret::store_custody(store, &sealing_key, under, &Custody::Share(Box::new(share)))
    })?;
    wait_for_deliveries(&published, &plan.peers, deadline).await;
    let _ = stop.send(());
    let _ = server.await;
    let hex0x = |b: &[u8]| format!("0x{}", hex::encode(b));
    Ok(KeyGenOutput {
        session: hex0x(&plan.session),
        transcript: hex0x(&transcript),
        index: me,
        threshold: plan.threshold,
        group_key: hex0x(&group_key),
        verifying_shares: shares
            .iter()
            .map(|(index, share)| VerifyingShare {
                index: *index,
                verifying_share: hex0x(share),
            })
            .collect(),
        signing_address: hex0x(&signer),
        config_digest: digest.to_string(),
        report: hex::encode(result.report),
        cert_table: hex::encode(result.cert_table),
    })
}

/// The number of participants the plan names, once it is consistent: this node and its peers
/// are exactly 1..=n.
fn check_plan(plan: &KeyGenPlan) -> Result<u16, KeyGenError> {
    let n = u16::try_from(plan.peers.len() + 1)
        .map_err(|_| KeyGenError::Plan("more than 65535 participants".into()))?;
    if plan.peers.contains_key(&plan.index) {
        return Err(KeyGenError::Plan(format!(
            "participant {} is this node; it is not its own peer",
            plan.index
        )));
    }
    let mut all: Vec<u16> = plan.peers.keys().copied().collect();
    all.push(plan.index);
    all.sort_unstable();
    if all != (1..=n).collect::<Vec<_>>() {
        return Err(KeyGenError::Plan(format!(
            "the participants are {all:?}; they must be 1..={n}, each once"
        )));
    }
    if plan.threshold < 2 || plan.threshold > n {
        return Err(KeyGenError::Plan(format!(
            "threshold {} of {n} participants: it must be 2..={n}",
            plan.threshold
        )));
    }
    Ok(n)
}

/// Why one ask of a peer did not give an answer.
enum Fetch {
    /// The peer is not up yet or not ready: ask again until the deadline.
    Retry(String),
    /// The peer refused or its answer failed its check: the key generation ends.
    Fatal(KeyGenError),
}

impl Fetch {
    /// UNAVAILABLE (no connection yet, not ready), UNKNOWN (a connection cut),
    /// DEADLINE_EXCEEDED and CANCELLED (a slow or dropped call) and RESOURCE_EXHAUSTED (the
    /// peer's rate limit) are retried; any other status is the peer's refusal.
    fn from_status(node: u16, status: tonic::Status) -> Self {
        match status.code() {
            tonic::Code::Unavailable
            | tonic::Code::Unknown
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Cancelled
            | tonic::Code::ResourceExhausted => {
                Fetch::Retry(format!("participant {node}: {}", status.message()))
            }
            code => Fetch::Fatal(KeyGenError::Malformed {
                node,
                message: format!("refused: {code:?}: {}", status.message()),
            }),
        }
    }
}

impl Fetch {
    /// A round-1 check that failed for want of a certificate (AMD's KDS down or rate limiting)
    /// or of a registry read (an RPC hiccup) is asked again: neither says anything against the
    /// peer. Every other failure (evidence that does not verify, a refusal by the registry, a
    /// malformed message) ends the key generation.
    fn from_check(error: KeyGenError) -> Self {
        match &error {
            KeyGenError::Evidence {
                source: snpkms_core::EvidenceError::Certificates(CertSourceError::Unavailable(_)),
                ..
            }
            | KeyGenError::Registry(_) => Fetch::Retry(error.to_string()),
            _ => Fetch::Fatal(error),
        }
    }
}

/// The longest one ask of a peer may take before the others are asked (and it is asked again):
/// one hung peer must not use up the whole deadline. Above the KDS client's own deadline (20 s,
/// Retry-After included), so that checking a peer's evidence with a fetched VCEK can finish.
const ASK_TIMEOUT: Duration = Duration::from_secs(30);

/// The pause between rounds of asking starts here and doubles up to [`MAX_PAUSE`]: a peer that
/// is not up yet is found soon, and a KDS that rate-limits is not hammered.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Asks every peer with `ask` until each has answered, retrying the ones that are not up yet
/// or not ready until `deadline`. Any other refusal, or an answer that fails its check, ends it.
async fn fetch_all<T, F, Fut>(
    clients: &BTreeMap<u16, KeyGenClient<Channel>>,
    deadline: Instant,
    stage: &'static str,
    ask: F,
) -> Result<BTreeMap<u16, T>, KeyGenError>
where
    F: Fn(u16, KeyGenClient<Channel>) -> Fut,
    Fut: std::future::Future<Output = Result<T, Fetch>>,
{
    let mut got = BTreeMap::new();
    let mut last = String::from("none");
    let mut pause = FIRST_PAUSE;
    loop {
        for (node, client) in clients.iter() {
            if got.contains_key(node) {
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left.min(ASK_TIMEOUT), ask(*node, client.clone())).await {
                Ok(Ok(answer)) => {
                    got.insert(*node, answer);
                }
                Ok(Err(Fetch::Retry(why))) => last = why,
                Ok(Err(Fetch::Fatal(e))) => return Err(e),
                Err(_) => last = format!("participant {node}: no answer within {ASK_TIMEOUT:?}"),
            }
        }
        if got.len() == clients.len() {
            return Ok(got);
        }
        if Instant::now() >= deadline {
            return Err(KeyGenError::Timeout {
                stage,
                waiting: clients
                    .keys()
                    .filter(|n| !got.contains_key(n))
                    .copied()
                    .collect(),
                last,
            });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Keeps serving until every peer has fetched its round-2 package, or the deadline.
async fn wait_for_deliveries(
    published: &Published,
    peers: &BTreeMap<u16, String>,
    deadline: Instant,
) {
    loop {
        let delivery = published.delivery.notified();
        let delivered = published.delivered();
        if peers.keys().all(|p| delivered.contains(p)) {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let missing: Vec<u16> = peers
                .keys()
                .filter(|p| !delivered.contains(p))
                .copied()
                .collect();
            tracing::warn!(?missing, "key generation: these participants did not fetch their round-2 package before the deadline; they have no share");
            return;
        }
        let _ = tokio::time::timeout(left.min(Duration::from_millis(500)), delivery).await;
    }
}

/// Serves the KeyGen service on `addr` until told to stop.
async fn serve(
    addr: std::net::SocketAddr,
    published: Arc<Published>,
) -> Result<
    (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ),
    NodeError,
> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Listen { addr, source })?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let task = tokio::spawn(async move {
        let served = tonic::transport::Server::builder()
            .add_service(KeyGenServer::new(KeyGenService(published)))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!("key generation server: {e}");
        }
    });
    Ok((stop, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retried(fetch: Fetch) -> bool {
        matches!(fetch, Fetch::Retry(_))
    }

    #[test]
    fn only_what_says_nothing_against_the_peer_is_asked_again() {
        // A slow, cut, busy or not-yet-started peer is asked again.
        for code in [
            tonic::Code::Unavailable,
            tonic::Code::Unknown,
            tonic::Code::DeadlineExceeded,
            tonic::Code::Cancelled,
            tonic::Code::ResourceExhausted,
        ] {
            assert!(
                retried(Fetch::from_status(2, tonic::Status::new(code, "x"))),
                "{code:?}"
            );
        }
        // A refusal ends the key generation.
        for code in [
            tonic::Code::PermissionDenied,
            tonic::Code::InvalidArgument,
            tonic::Code::FailedPrecondition,
            tonic::Code::NotFound,
        ] {
            assert!(
                !retried(Fetch::from_status(2, tonic::Status::new(code, "x"))),
                "{code:?}"
            );
        }
        // A KDS that is down or a registry read that failed: asked again.
        let kds_down = KeyGenError::Evidence {
            node: 2,
            source: snpkms_core::EvidenceError::Certificates(CertSourceError::Unavailable(
                "kds: 503".into(),
            )),
        };
        assert!(retried(Fetch::from_check(kds_down)));
        assert!(retried(Fetch::from_check(KeyGenError::Registry(
            "rpc timeout".into()
        ))));
        // Evidence that does not verify, a certificate that is refused, no source at all, a
        // registry's refusal or a malformed message: the end.
        let forged = KeyGenError::Evidence {
            node: 2,
            source: snpkms_core::EvidenceError::Certificates(CertSourceError::NotConfigured),
        };
        assert!(!retried(Fetch::from_check(forged)));
        assert!(!retried(Fetch::from_check(KeyGenError::Malformed {
            node: 2,
            message: "no evidence".into(),
        })));
        assert!(!retried(Fetch::from_check(KeyGenError::NotBound {
            node: 2
        })));
    }
}
