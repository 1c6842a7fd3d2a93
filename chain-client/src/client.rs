//! [`ChainClient`]: authorization reads pinned to one block ([`crate::view`]), decided by a
//! quorum of endpoints ([`crate::quorum`]), cached per BootInfo ([`crate::cache`]) until the
//! follower ([`crate::follower`]) sees an event that may change them. This module only wires
//! them: each holds its own invariant.

use crate::bindings::{sol_boot_info, KmsRegistry};
use crate::cache::{CacheKey, DecisionCache, Entry, Kind};
use crate::config::ChainConfig;
use crate::error::ChainError;
use crate::follower::next_view;
use crate::quorum::{too_few, winner, Winner};
use crate::rpc::Connection;
use crate::view::{check_stale, View};
use crate::{BlockRef, ChainPosition};
use alloy::primitives::{keccak256, Address, Bytes, B256};
use alloy::sol_types::SolCall;
use futures::future::join_all;
use serde::Serialize;
use snpkms_verifier::{BootInfo, Product, TcbVersion};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// An authorization answer and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Whether the registry allows it.
    pub allowed: bool,
    /// The registry's reason when refused (`"os image not allowed"`, ...); empty when allowed.
    pub reason: String,
    /// The block the answer was read at. A cached answer keeps the block it was first read at:
    /// no authorization event happened between that block and the current pinned block.
    pub block: BlockRef,
    /// Served from the decision cache (no RPC call).
    pub cached: bool,
}

/// The KMS identity published on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KmsInfo {
    /// The address of the KMS root signing key: what guests trust.
    pub root_signing_address: Address,
    /// The KMS nodes' TLS public key (SPKI DER), possibly empty.
    #[serde(serialize_with = "hex_bytes")]
    pub tls_public_key: Vec<u8>,
    /// The current key epoch.
    pub key_epoch: u32,
    /// The pinned block it was read at.
    pub block: BlockRef,
}

/// The registry's threshold share set (`thresholdGroup()`); share epoch 0 and nothing else in
/// the replicated-root mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThresholdGroupInfo {
    /// 0 until a share set is recorded, then 1, 2, … (one per re-share).
    pub share_epoch: u32,
    /// Partials needed.
    pub threshold: u16,
    /// The group key `s·G` (33 bytes, compressed).
    #[serde(serialize_with = "hex_bytes")]
    pub group_key: Vec<u8>,
    /// The nodes, by increasing index.
    pub nodes: Vec<ThresholdNodeInfo>,
    /// The pinned block it was read at.
    pub block: BlockRef,
}

/// One node of a threshold share set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThresholdNodeInfo {
    /// Its index in the key generation.
    pub index: u16,
    /// Its verifying share `s_i·G` (33 bytes, compressed).
    #[serde(serialize_with = "hex_bytes")]
    pub verifying_share: Vec<u8>,
    /// The address whose signatures count for it.
    pub signer: Address,
}

fn hex_bytes<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("0x{}", hex::encode(v)))
}

/// Decision cache counters since `connect`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// Decisions served from the cache.
    pub hits: u64,
    /// Decisions read from the chain.
    pub misses: u64,
    /// Cached decisions dropped because an event (or a reorg) may have changed them.
    pub invalidations: u64,
}

/// Client of the on-chain registry. Cheap to clone; the block follower stops when the last clone
/// is dropped.
#[derive(Clone)]
pub struct ChainClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ChainClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainClient")
            .field("endpoints", &self.inner.cfg.endpoints)
            .field("registry", &self.inner.cfg.registry)
            .field("chain_id", &self.inner.chain_id)
            .finish()
    }
}

struct Inner {
    cfg: ChainConfig,
    endpoints: Vec<Connection>,
    chain_id: u64,
    state: Mutex<State>,
    /// Serialises polls, so a request that finds the view old and the follower polling at the
    /// same time share one poll instead of racing it.
    poll_lock: tokio::sync::Mutex<()>,
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
    follower: Mutex<Option<JoinHandle<()>>>,
    /// The pinned block after each successful poll, for those who act on every new view.
    pinned: tokio::sync::watch::Sender<Option<BlockRef>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.follower).take() {
            task.abort();
        }
    }
}

#[derive(Default)]
struct State {
    view: Option<View>,
    /// False after a failed poll: nothing is served from the cache until a poll succeeds.
    view_ok: bool,
    cache: DecisionCache,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving rather than
    // poisoning every later request.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ChainClient {
    /// Connects to every endpoint, checks that they serve the same chain and that the registry
    /// is a contract there, takes a first view of the chain, and starts the block follower.
    pub async fn connect(cfg: ChainConfig) -> Result<ChainClient, ChainError> {
        cfg.validate().map_err(ChainError::Config)?;
        let endpoints = cfg
            .endpoints
            .iter()
            .map(|e| Connection::new(e, cfg.request_timeout, cfg.retries))
            .collect::<Result<Vec<_>, _>>()?;

        let ids = join_all(endpoints.iter().map(|e| e.chain_id())).await;
        let mut seen: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
        let mut errors = Vec::new();
        for (e, id) in endpoints.iter().zip(ids) {
            match id {
                Ok(id) => seen.entry(id).or_default().push(&e.url),
                Err(err) => errors.push(err),
            }
        }
        if seen.len() > 1 {
            let detail = seen
                .iter()
                .map(|(id, urls)| format!("{} on chain {id}", urls.join(", ")))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ChainError::ChainIdMismatch { detail });
        }
        let answered: usize = seen.values().map(Vec::len).sum();
        if answered < cfg.quorum {
            return Err(too_few(cfg.quorum, answered, errors, endpoints.len()));
        }
        let chain_id = *seen.keys().next().ok_or_else(|| ChainError::NoQuorum {
            needed: cfg.quorum,
            answered: 0,
            errors: vec![],
        })?;
        if let Some(expected) = cfg.chain_id {
            if expected != chain_id {
                return Err(ChainError::ChainIdMismatch {
                    detail: format!(
                        "configured chain id {expected}, the RPC endpoints serve chain {chain_id}"
                    ),
                });
            }
        }

        let inner = Arc::new(Inner {
            cfg,
            endpoints,
            chain_id,
            state: Mutex::new(State::default()),
            poll_lock: tokio::sync::Mutex::new(()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            follower: Mutex::new(None),
            pinned: tokio::sync::watch::Sender::new(None),
        });
        let view = inner.poll_once().await?;
        // At the head, not the pinned block: a registry deployed moments ago is still the
        // right contract, and reads will say "unknown" only until it is deep enough.
        let code = join_all(
            view.agreeing
                .iter()
                .map(|&i| inner.endpoints[i].code_len(inner.cfg.registry, view.head.hash)),
        )
        .await;
        if code.iter().any(|c| matches!(c, Ok(0))) {
            return Err(ChainError::NoContract {
                address: inner.cfg.registry,
                chain_id,
            });
        }

        let task = tokio::spawn(follow(Arc::downgrade(&inner)));
        *lock(&inner.follower) = Some(task);
        Ok(ChainClient { inner })
    }

    /// `KmsRegistry.isAppAllowed(info)` at the pinned block: may this app guest get its keys?
    pub async fn is_app_allowed(&self, info: &BootInfo) -> Result<Decision, ChainError> {
        let data = KmsRegistry::isAppAllowedCall {
            info: sol_boot_info(info),
        }
        .abi_encode();
        self.inner
            .decide(Kind::App, Address::from(info.app_id), data.into())
            .await
    }

    /// `KmsRegistry.isKmsAllowed(info, configDigest)` at the pinned block: may a node with this
    /// boot info and security configuration serve, or join the KMS?
    pub async fn is_kms_allowed(
        &self,
        info: &BootInfo,
        config_digest: [u8; 32],
    ) -> Result<Decision, ChainError> {
        let data = KmsRegistry::isKmsAllowedCall {
            info: sol_boot_info(info),
            configDigest: B256::from(config_digest),
        }
        .abi_encode();
        self.inner
            .decide(Kind::Kms, Address::ZERO, data.into())
            .await
    }

    /// The KMS root signing address, TLS public key and key epoch.
    pub async fn kms_info(&self) -> Result<KmsInfo, ChainError> {
        let (r, block) = self.inner.read(KmsRegistry::kmsInfoCall {}).await?;
        Ok(KmsInfo {
            root_signing_address: r.rootSigningAddress,
            tls_public_key: r.tlsPublicKey.to_vec(),
            key_epoch: r.keyEpoch_,
            block,
        })
    }

    /// The threshold share set at the pinned block.
    pub async fn threshold_group(&self) -> Result<ThresholdGroupInfo, ChainError> {
        let (r, block) = self.inner.read(KmsRegistry::thresholdGroupCall {}).await?;
        Ok(ThresholdGroupInfo {
            share_epoch: r.shareEpoch,
            threshold: r.threshold_,
            group_key: r.groupKey.to_vec(),
            nodes: r
                .nodes
                .into_iter()
                .map(|n| ThresholdNodeInfo {
                    index: n.index,
                    verifying_share: n.verifyingShare.to_vec(),
                    signer: n.signer,
                })
                .collect(),
            block,
        })
    }

    /// The current key epoch.
    pub async fn key_epoch(&self) -> Result<u32, ChainError> {
        Ok(self.inner.read(KmsRegistry::keyEpochCall {}).await?.0)
    }

    /// The minimum TCB the registry requires of `product` (all zero until set).
    pub async fn min_tcb(&self, product: Product) -> Result<TcbVersion, ChainError> {
        let call = KmsRegistry::minTcbCall {
            product: product.chain_id(),
        };
        Ok(self.inner.read(call).await?.0.into())
    }

    /// `KmsRegistry.verifyAppKey`: was `sig` made by the registered KMS root key over this app
    /// signing key and epoch? Does not compare `epoch` with [`ChainClient::key_epoch`].
    pub async fn verify_app_key(
        &self,
        app: Address,
        app_signer: Address,
        epoch: u32,
        sig: &[u8],
    ) -> Result<bool, ChainError> {
        let call = KmsRegistry::verifyAppKeyCall {
            appId: app,
            appSigningAddress: app_signer,
            epoch,
            signature: Bytes::copy_from_slice(sig),
        };
        Ok(self.inner.read(call).await?.0)
    }

    /// `KmsRegistry.verifyAppKeyThreshold`: do `sigs` hold signatures of t distinct nodes of
    /// the recorded share set over this app signing key and epoch?
    pub async fn verify_app_key_threshold(
        &self,
        app: Address,
        app_signer: Address,
        epoch: u32,
        sigs: &[Vec<u8>],
    ) -> Result<bool, ChainError> {
        let call = KmsRegistry::verifyAppKeyThresholdCall {
            appId: app,
            appSigningAddress: app_signer,
            epoch,
            signatures: sigs.iter().map(|s| Bytes::copy_from_slice(s)).collect(),
        };
        Ok(self.inner.read(call).await?.0)
    }

    /// Decision cache counters since `connect`.
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            hits: self.inner.hits.load(Ordering::Relaxed),
            misses: self.inner.misses.load(Ordering::Relaxed),
            invalidations: self.inner.invalidations.load(Ordering::Relaxed),
        }
    }

    /// The chain id every endpoint serves.
    pub fn chain_id(&self) -> u64 {
        self.inner.chain_id
    }

    /// The registry proxy reads go to.
    pub fn registry(&self) -> Address {
        self.inner.cfg.registry
    }

    /// The block reads are currently pinned to, if the last poll succeeded.
    pub fn pinned_block(&self) -> Option<BlockRef> {
        let st = lock(&self.inner.state);
        st.view
            .as_ref()
            .filter(|_| st.view_ok)
            .map(|v| v.pinned.block_ref())
    }

    /// Where the follower's last successful poll saw the chain: what an operator watches to
    /// see a node fall behind (its pinned block stops advancing or grows old). Kept after a
    /// failed poll, with `healthy` false: the numbers say how far behind the node is.
    pub fn position(&self) -> Option<ChainPosition> {
        let st = lock(&self.inner.state);
        st.view.as_ref().map(|v| ChainPosition {
            head: v.head.number,
            pinned: v.pinned.number,
            pinned_timestamp: v.pinned.timestamp,
            max_staleness_secs: self.inner.cfg.max_staleness.as_secs(),
            healthy: st.view_ok,
        })
    }

    /// Changes whenever the pinned block does (after the events up to it were processed).
    pub fn watch_pinned(&self) -> tokio::sync::watch::Receiver<Option<BlockRef>> {
        self.inner.pinned.subscribe()
    }

    /// Polls the chain now instead of waiting for the follower's next tick (which does the same
    /// every `poll_interval`), processing events since the last poll. Returns the pinned block.
    pub async fn refresh(&self) -> Result<BlockRef, ChainError> {
        Ok(self.inner.poll_once().await?.pinned.block_ref())
    }
}

async fn follow(inner: Weak<Inner>) {
    let interval = match inner.upgrade() {
        Some(i) => i.cfg.poll_interval,
        None => return,
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if let Err(e) = inner.poll_once().await {
            tracing::warn!(error = %e, "chain follower: poll failed; cached decisions are not served until it succeeds");
        }
    }
}

impl Inner {
    fn endpoint_labels(&self) -> String {
        self.endpoints
            .iter()
            .map(|e| e.url.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// How old the follower's view may be before a request polls by itself. It depends on
    /// `request_timeout` (a poll in flight may take that long), which is why the node seals that
    /// setting too.
    fn view_max_age(&self) -> Duration {
        self.cfg.poll_interval * 2 + self.cfg.request_timeout
    }

    /// A view to read at: the follower's if recent, else a fresh poll. Never a stale one.
    async fn current_view(&self) -> Result<View, ChainError> {
        let asked = Instant::now();
        {
            let st = lock(&self.state);
            if let Some(v) = &st.view {
                if st.view_ok && v.at.elapsed() <= self.view_max_age() {
                    check_stale(&self.cfg, v)?;
                    return Ok(v.clone());
                }
            }
        }
        let _guard = self.poll_lock.lock().await;
        {
            // The follower may have polled while we waited for the lock.
            let st = lock(&self.state);
            if let Some(v) = &st.view {
                if st.view_ok && v.at >= asked {
                    check_stale(&self.cfg, v)?;
                    return Ok(v.clone());
                }
            }
        }
        let view = self.poll_locked().await?;
        check_stale(&self.cfg, &view)?;
        Ok(view)
    }

    async fn poll_once(&self) -> Result<View, ChainError> {
        let _guard = self.poll_lock.lock().await;
        self.poll_locked().await
    }

    /// One follower step; the caller holds `poll_lock`. What changed is applied to the cache
    /// under the same lock that publishes the new view: no reader sees the new pinned block
    /// with decisions the events up to it have invalidated.
    async fn poll_locked(&self) -> Result<View, ChainError> {
        let prev = lock(&self.state).view.clone();
        let (view, invalidation) = match next_view(&self.endpoints, &self.cfg, prev.as_ref()).await
        {
            Ok(v) => v,
            Err(e) => {
                lock(&self.state).view_ok = false;
                return Err(e);
            }
        };
        let mut st = lock(&self.state);
        let dropped = st.cache.apply(invalidation);
        self.invalidations
            .fetch_add(dropped as u64, Ordering::Relaxed);
        st.view = Some(view.clone());
        st.view_ok = true;
        drop(st);
        let pinned = Some(view.pinned.block_ref());
        self.pinned.send_if_modified(|current| {
            let changed = *current != pinned;
            *current = pinned;
            changed
        });
        Ok(view)
    }

    async fn decide(&self, kind: Kind, app: Address, data: Bytes) -> Result<Decision, ChainError> {
        let key = CacheKey {
            kind,
            digest: keccak256(&data),
        };
        if let Some(d) = self.cached(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(d);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let (raw, block) = self.quorum_call(self.cfg.registry, data).await?;
        // isAppAllowed and isKmsAllowed return the same (bool, string).
        let r = KmsRegistry::isAppAllowedCall::abi_decode_returns(&raw).map_err(|e| {
            ChainError::BadResponse {
                url: self.endpoint_labels(),
                method: "eth_call",
                detail: format!("isAppAllowed/isKmsAllowed result: {e}"),
            }
        })?;
        let mut st = lock(&self.state);
        let pinned = st.view.as_ref().map(|v| v.pinned.block_ref());
        st.cache.insert_if_current(
            key,
            Entry {
                allowed: r.allowed,
                reason: r.reason.clone(),
                block,
                app,
                inserted: Instant::now(),
            },
            pinned,
            self.cfg.cache_ttl,
            self.cfg.decision_cache,
        );
        Ok(Decision {
            allowed: r.allowed,
            reason: r.reason,
            block,
            cached: false,
        })
    }

    /// A cache hit, only while the follower's view is recent, healthy and not stale.
    fn cached(&self, key: &CacheKey) -> Option<Decision> {
        let st = lock(&self.state);
        let view = st.view.as_ref()?;
        if !st.view_ok
            || view.at.elapsed() > self.view_max_age()
            || check_stale(&self.cfg, view).is_err()
        {
            return None;
        }
        let e = st.cache.get(key, self.cfg.cache_ttl)?;
        Some(Decision {
            allowed: e.allowed,
            reason: e.reason.clone(),
            block: e.block,
            cached: true,
        })
    }

    async fn read<C: SolCall>(&self, call: C) -> Result<(C::Return, BlockRef), ChainError> {
        let (raw, block) = self
            .quorum_call(self.cfg.registry, call.abi_encode().into())
            .await?;
        let r = C::abi_decode_returns(&raw).map_err(|e| ChainError::BadResponse {
            url: self.endpoint_labels(),
            method: "eth_call",
            detail: format!("{}: {e}", C::SIGNATURE),
        })?;
        Ok((r, block))
    }

    /// One `eth_call` per endpoint at the pinned block hash, decided by the quorum vote.
    async fn quorum_call(&self, to: Address, data: Bytes) -> Result<(Bytes, BlockRef), ChainError> {
        let view = self.current_view().await?;
        let block = view.pinned.block_ref();
        let results = join_all(self.endpoints.iter().map(|e| e.call(to, &data, block.hash))).await;
        let mut answers: BTreeMap<Bytes, Vec<&str>> = BTreeMap::new();
        let mut errors = Vec::new();
        for (e, r) in self.endpoints.iter().zip(results) {
            match r {
                Ok(bytes) => answers.entry(bytes).or_default().push(&e.url),
                Err(err) => errors.push(err),
            }
        }
        let k = self.cfg.quorum;
        let describe = |answers: &BTreeMap<Bytes, Vec<&str>>| {
            answers
                .iter()
                .map(|(bytes, urls)| {
                    format!(
                        "{} answered 0x{}",
                        urls.join(", "),
                        hex::encode(&bytes[..bytes.len().min(96)])
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        match winner(&answers, k) {
            Winner::One(bytes) => {
                if answers.len() > 1 {
                    tracing::warn!(
                        block = %block,
                        answers = %describe(&answers),
                        "RPC endpoints disagree; {k} or more agree, the others are out-voted"
                    );
                }
                Ok((bytes, block))
            }
            Winner::Contested => Err(ChainError::Disagreement {
                block,
                detail: describe(&answers),
            }),
            Winner::None => {
                let answered = answers.values().map(Vec::len).max().unwrap_or(0);
                if answered == 0 {
                    if let Some(pos) = errors
                        .iter()
                        .position(|e| matches!(e, ChainError::Contract(_)))
                    {
                        return Err(errors.swap_remove(pos));
                    }
                }
                Err(too_few(k, answered, errors, self.endpoints.len()))
            }
        }
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync + Clone>() {}
    is::<ChainClient>();
}
