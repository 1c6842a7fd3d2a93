//! Authorization reads: pinned to one block, answered by a quorum of endpoints, cached per
//! BootInfo until an event (or the TTL) says the answer may have changed.

use crate::bindings::{sol_boot_info, AppAuth, KmsRegistry};
use crate::config::{ChainConfig, ReadAt};
use crate::error::ChainError;
use crate::rpc::{BlockMeta, Endpoint};
use crate::BlockRef;
use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{keccak256, Address, Bytes, B256};
use alloy::rpc::types::{Filter, Log};
use alloy::sol_types::{SolCall, SolEvent};
use futures::future::join_all;
use serde::Serialize;
use snpkms_verifier::{BootInfo, Product, TcbVersion};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;

/// An authorization answer and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// The registry's reason when refused (`"os image not allowed"`, ...); empty when allowed.
    pub reason: String,
    /// The block the answer was read at. A cached answer keeps the block it was first read at:
    /// no authorization event happened between that block and the current pinned block.
    pub block: BlockRef,
    pub cached: bool,
}

/// The KMS identity published on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KmsInfo {
    pub root_signing_address: Address,
    #[serde(serialize_with = "hex_bytes")]
    pub tls_public_key: Vec<u8>,
    pub key_epoch: u32,
    pub block: BlockRef,
}

fn hex_bytes<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("0x{}", hex::encode(v)))
}

/// Decision cache counters since `connect`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    pub hits: u64,
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

/// Beyond this many blocks since the last processed one, the follower drops the whole cache
/// instead of asking for the logs (providers cap `eth_getLogs` ranges, and a cold cache is safe).
const MAX_LOG_RANGE: u64 = 2_000;
/// Bound on cached decisions; BootInfos come from verified hardware, but memory is not free.
const MAX_CACHE_ENTRIES: usize = 10_000;

struct Inner {
    cfg: ChainConfig,
    endpoints: Vec<Endpoint>,
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
    cache: HashMap<CacheKey, Entry>,
}

/// The follower's picture of the chain after one poll.
#[derive(Debug, Clone)]
struct View {
    /// The k-th newest head among the endpoints: what staleness is measured on.
    head: BlockMeta,
    /// The block all reads are made at.
    pinned: BlockMeta,
    /// Indices of the endpoints that have `pinned`.
    agreeing: Vec<usize>,
    at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    App,
    Kms,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct CacheKey {
    kind: Kind,
    /// keccak256 of the calldata, which is the whole BootInfo.
    digest: B256,
}

#[derive(Debug, Clone)]
struct Entry {
    allowed: bool,
    reason: String,
    block: BlockRef,
    app: Address,
    inserted: Instant,
}

enum Invalidation {
    Nothing,
    All(&'static str),
    Apps(HashSet<Address>),
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
            .map(|e| Endpoint::new(e, cfg.request_timeout, cfg.retries))
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

    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            hits: self.inner.hits.load(Ordering::Relaxed),
            misses: self.inner.misses.load(Ordering::Relaxed),
            invalidations: self.inner.invalidations.load(Ordering::Relaxed),
        }
    }

    pub fn chain_id(&self) -> u64 {
        self.inner.chain_id
    }

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

impl BlockMeta {
    fn block_ref(&self) -> BlockRef {
        BlockRef {
            number: self.number,
            hash: self.hash,
        }
    }
}

fn too_few(needed: usize, answered: usize, mut errors: Vec<ChainError>, n: usize) -> ChainError {
    if n == 1 && errors.len() == 1 {
        if let Some(e) = errors.pop() {
            return e;
        }
    }
    ChainError::NoQuorum {
        needed,
        answered,
        errors: errors.iter().map(ToString::to_string).collect(),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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

    /// The pinned block's age is what counts, not the head's: with `safe`/`finalized` a fresh
    /// head over a stalled finality is an old view in which revocations are invisible.
    fn check_stale(&self, view: &View) -> Result<(), ChainError> {
        let age = unix_now().saturating_sub(view.pinned.timestamp);
        let max = self.cfg.max_staleness.as_secs();
        if age > max {
            return Err(ChainError::Stale {
                block: view.pinned.number,
                read_at: self.cfg.read_at.to_string(),
                age_secs: age,
                max_secs: max,
            });
        }
        Ok(())
    }

    /// A view to read at: the follower's if recent, else a fresh poll. Never a stale one.
    async fn current_view(&self) -> Result<View, ChainError> {
        let asked = Instant::now();
        {
            let st = lock(&self.state);
            if let Some(v) = &st.view {
                if st.view_ok && v.at.elapsed() <= self.view_max_age() {
                    self.check_stale(v)?;
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
                    self.check_stale(v)?;
                    return Ok(v.clone());
                }
            }
        }
        let view = self.poll_locked().await?;
        self.check_stale(&view)?;
        Ok(view)
    }

    async fn poll_once(&self) -> Result<View, ChainError> {
        let _guard = self.poll_lock.lock().await;
        self.poll_locked().await
    }

    /// One follower step; the caller holds `poll_lock`.
    async fn poll_locked(&self) -> Result<View, ChainError> {
        let prev = lock(&self.state).view.clone();
        let mut view = match self.observe().await {
            Ok(v) => v,
            Err(e) => {
                lock(&self.state).view_ok = false;
                return Err(e);
            }
        };
        if let Some(prev) = &prev {
            if view.pinned.number < prev.pinned.number
                && self.still_canonical(&prev.pinned, &view).await
            {
                // A lagging answer (a load-balanced provider, a restarted node), not a reorg:
                // never move the pin back, or a removal already seen could be undone.
                view.pinned = prev.pinned;
            }
        }
        let invalidation = match &prev {
            None => Invalidation::Nothing,
            Some(prev) => self.changes_between(&prev.pinned, &view).await,
        };
        let mut st = lock(&self.state);
        let dropped = match invalidation {
            Invalidation::Nothing => 0,
            Invalidation::All(why) => {
                tracing::debug!(why, entries = st.cache.len(), "decision cache cleared");
                let n = st.cache.len();
                st.cache.clear();
                n
            }
            Invalidation::Apps(apps) => {
                let before = st.cache.len();
                st.cache
                    .retain(|k, e| !(k.kind == Kind::App && apps.contains(&e.app)));
                before - st.cache.len()
            }
        };
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

    /// Heads of all endpoints -> the pinned block number -> the block at that number, which k
    /// endpoints must agree on.
    async fn observe(&self) -> Result<View, ChainError> {
        let k = self.cfg.quorum;
        let n = self.endpoints.len();
        let heads = join_all(
            self.endpoints
                .iter()
                .map(|e| e.block(BlockNumberOrTag::Latest)),
        )
        .await;
        let mut ok: Vec<(usize, BlockMeta)> = Vec::new();
        let mut errors = Vec::new();
        for (i, h) in heads.into_iter().enumerate() {
            match h {
                Ok(b) => ok.push((i, b)),
                Err(e) => errors.push(e),
            }
        }
        if ok.len() < k {
            return Err(too_few(k, ok.len(), errors, n));
        }
        // The k-th newest: fewer than k endpoints cannot make the chain look fresher or longer.
        let mut by_time = ok.clone();
        by_time.sort_by_key(|(_, b)| std::cmp::Reverse(b.timestamp));
        let head = by_time[k - 1].1;
        let mut numbers: Vec<u64> = ok.iter().map(|(_, b)| b.number).collect();
        numbers.sort_unstable_by(|a, b| b.cmp(a));

        let target = match self.cfg.read_at {
            ReadAt::Confirmations(c) => numbers[k - 1].saturating_sub(c),
            ReadAt::Safe | ReadAt::Finalized => {
                let tag = if self.cfg.read_at == ReadAt::Safe {
                    BlockNumberOrTag::Safe
                } else {
                    BlockNumberOrTag::Finalized
                };
                let tagged = join_all(ok.iter().map(|&(i, _)| self.endpoints[i].block(tag))).await;
                let mut nums = Vec::new();
                let mut errors = Vec::new();
                for t in tagged {
                    match t {
                        Ok(b) => nums.push(b.number),
                        Err(e) => errors.push(e),
                    }
                }
                if nums.len() < k {
                    return Err(too_few(k, nums.len(), errors, n));
                }
                nums.sort_unstable_by(|a, b| b.cmp(a));
                nums[k - 1]
            }
        };

        let at_target = join_all(ok.iter().map(|&(i, h)| async move {
            if h.number == target {
                Ok(h)
            } else {
                self.endpoints[i]
                    .block(BlockNumberOrTag::Number(target))
                    .await
            }
        }))
        .await;
        // The vote is on the whole summary (number, hash, parent, timestamp): with the hash alone,
        // whichever endpoint answered last would set the timestamp staleness is judged on.
        let mut by_block: BTreeMap<BlockMeta, Vec<usize>> = BTreeMap::new();
        let mut errors = Vec::new();
        for (&(i, _), b) in ok.iter().zip(at_target) {
            match b {
                Ok(b) => by_block.entry(b).or_default().push(i),
                Err(e) => errors.push(e),
            }
        }
        let describe = || {
            by_block
                .iter()
                .map(|(b, idx)| {
                    let urls: Vec<&str> = idx
                        .iter()
                        .map(|&i| self.endpoints[i].url.as_str())
                        .collect();
                    format!(
                        "{} have {} (parent {}, time {})",
                        urls.join(", "),
                        b.hash,
                        b.parent_hash,
                        b.timestamp
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        match quorum_winner(&by_block, k) {
            Winner::One(pinned) => {
                if by_block.len() > 1 {
                    tracing::warn!(
                        number = target,
                        blocks = %describe(),
                        "RPC endpoints disagree on the block; {k} or more agree, the others are out-voted"
                    );
                }
                let agreeing = by_block.get(&pinned).cloned().unwrap_or_default();
                Ok(View {
                    head,
                    pinned,
                    agreeing,
                    at: Instant::now(),
                })
            }
            Winner::Contested => Err(ChainError::BlockDisagreement {
                number: target,
                detail: describe(),
            }),
            Winner::None => Err(too_few(
                k,
                by_block.values().map(Vec::len).max().unwrap_or(0),
                errors,
                n,
            )),
        }
    }

    /// Do all endpoints that agreed on the new view still have `block` at its height?
    async fn still_canonical(&self, block: &BlockMeta, view: &View) -> bool {
        let found = join_all(
            view.agreeing
                .iter()
                .map(|&i| self.endpoints[i].block(BlockNumberOrTag::Number(block.number))),
        )
        .await;
        found
            .iter()
            .all(|b| matches!(b, Ok(b) if b.hash == block.hash))
    }

    /// What may have changed between the previously processed pinned block and the new one.
    async fn changes_between(&self, prev: &BlockMeta, view: &View) -> Invalidation {
        let new = &view.pinned;
        if new.hash == prev.hash {
            return Invalidation::Nothing;
        }
        if new.number <= prev.number {
            tracing::warn!(
                prev = prev.number,
                new = new.number,
                "pinned block went back or was replaced (reorg deeper than the confirmations?)"
            );
            return Invalidation::All("pinned block replaced");
        }
        // The new pinned block must descend from the one whose events we processed; otherwise
        // the events between them were on another fork and the range query would mislead us.
        let continuous = if new.number == prev.number + 1 {
            new.parent_hash == prev.hash
        } else {
            self.still_canonical(prev, view).await
        };
        if !continuous {
            tracing::warn!(
                number = prev.number,
                "previously pinned block is no longer canonical"
            );
            return Invalidation::All("reorg below the pinned block");
        }
        if new.number - prev.number > MAX_LOG_RANGE {
            return Invalidation::All("too many blocks since the last poll");
        }
        let filter = Filter::new()
            .from_block(prev.number + 1)
            .to_block(new.number)
            .event_signature(decision_topics());
        let results = join_all(
            view.agreeing
                .iter()
                .map(|&i| self.endpoints[i].logs(&filter)),
        )
        .await;
        // Union over the agreeing endpoints: an endpoint that hides an event cannot keep a
        // revoked decision cached as long as another one reports it.
        let mut logs: Vec<Log> = Vec::new();
        for r in results {
            match r {
                Ok(l) => logs.extend(l),
                Err(e) => {
                    tracing::warn!(error = %e, "eth_getLogs failed; dropping the decision cache");
                    return Invalidation::All("eth_getLogs failed");
                }
            }
        }
        self.classify(&logs, new)
    }

    fn classify(&self, logs: &[Log], pinned: &BlockMeta) -> Invalidation {
        let mut apps = HashSet::new();
        for log in logs {
            if log.block_number == Some(pinned.number) && log.block_hash != Some(pinned.hash) {
                return Invalidation::All("logs from another fork");
            }
            let Some(&topic0) = log.topics().first() else {
                continue;
            };
            if log.address() == self.cfg.registry {
                if topic0 == KmsRegistry::AppRegistered::SIGNATURE_HASH {
                    match log.topics().get(1) {
                        Some(t) => {
                            apps.insert(Address::from_word(*t));
                        }
                        None => return Invalidation::All("malformed AppRegistered"),
                    }
                } else {
                    return Invalidation::All("registry policy changed");
                }
            } else if APP_TOPICS.contains(&topic0) {
                // An app's events come from its AppAuth clone, whose address is the app id.
                apps.insert(log.address());
            }
        }
        if apps.is_empty() {
            Invalidation::Nothing
        } else {
            Invalidation::Apps(apps)
        }
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
        // Only if the follower has not moved on: the events between `block` and its new pinned
        // block were processed without this entry, so caching it now could outlive a removal.
        if st
            .view
            .as_ref()
            .is_some_and(|v| v.pinned.hash == block.hash)
        {
            if st.cache.len() >= MAX_CACHE_ENTRIES {
                let ttl = self.cfg.cache_ttl;
                st.cache.retain(|_, e| e.inserted.elapsed() <= ttl);
                if st.cache.len() >= MAX_CACHE_ENTRIES {
                    st.cache.clear();
                }
            }
            st.cache.insert(
                key,
                Entry {
                    allowed: r.allowed,
                    reason: r.reason.clone(),
                    block,
                    app,
                    inserted: Instant::now(),
                },
            );
        }
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
        if !st.view_ok || view.at.elapsed() > self.view_max_age() || self.check_stale(view).is_err()
        {
            return None;
        }
        let e = st.cache.get(key)?;
        if e.inserted.elapsed() > self.cfg.cache_ttl {
            return None;
        }
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

    /// One `eth_call` per endpoint at the pinned block hash; k identical answers make a result.
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
                        hex::encode(short(bytes))
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        match quorum_winner(&answers, k) {
            Winner::One(bytes) => {
                if answers.len() > 1 {
                    // Out-voted: fewer than k endpoints said something else. Worth a look,
                    // never a decision.
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

/// The outcome of a k-of-n vote.
#[derive(Debug, PartialEq, Eq)]
enum Winner<T> {
    /// Exactly one answer has k or more votes.
    One(T),
    /// Different answers and none decides: two reach k, or none does.
    Contested,
    /// A single answer (or none) with fewer than k votes.
    None,
}

/// An answer decides only if k endpoints gave it and no other answer has k: fewer than k lying
/// endpoints can never decide, and with k > n/2 a minority of them is out-voted.
fn quorum_winner<K: Clone + Ord, V>(answers: &BTreeMap<K, Vec<V>>, k: usize) -> Winner<K> {
    let mut decided = answers.iter().filter(|(_, votes)| votes.len() >= k);
    match (decided.next(), decided.next()) {
        (Some((answer, _)), None) => Winner::One(answer.clone()),
        (Some(_), Some(_)) => Winner::Contested,
        (None, _) if answers.len() > 1 => Winner::Contested,
        (None, _) => Winner::None,
    }
}

fn short(b: &[u8]) -> &[u8] {
    &b[..b.len().min(96)]
}

/// Events after which a cached decision may be wrong: the registry's policy changes and app
/// registrations, and every AppAuth change. `KmsInfoSet`/`KeyEpochBumped` do not affect
/// `isAppAllowed`/`isKmsAllowed`.
fn decision_topics() -> Vec<B256> {
    let mut t = vec![
        KmsRegistry::OsImageAdded::SIGNATURE_HASH,
        KmsRegistry::OsImageRemoved::SIGNATURE_HASH,
        KmsRegistry::KmsMeasurementAdded::SIGNATURE_HASH,
        KmsRegistry::KmsMeasurementRemoved::SIGNATURE_HASH,
        KmsRegistry::KmsConfigAdded::SIGNATURE_HASH,
        KmsRegistry::KmsConfigRemoved::SIGNATURE_HASH,
        KmsRegistry::KmsChipAdded::SIGNATURE_HASH,
        KmsRegistry::KmsChipRemoved::SIGNATURE_HASH,
        KmsRegistry::MinTcbSet::SIGNATURE_HASH,
        KmsRegistry::AppRegistered::SIGNATURE_HASH,
        KmsRegistry::Upgraded::SIGNATURE_HASH,
    ];
    t.extend_from_slice(&APP_TOPICS);
    t
}

const APP_TOPICS: [B256; 7] = [
    AppAuth::ComposeHashAdded::SIGNATURE_HASH,
    AppAuth::ComposeHashRemoved::SIGNATURE_HASH,
    AppAuth::DeviceAdded::SIGNATURE_HASH,
    AppAuth::DeviceRemoved::SIGNATURE_HASH,
    AppAuth::AllowAnyDeviceSet::SIGNATURE_HASH,
    AppAuth::AppEnabled::SIGNATURE_HASH,
    AppAuth::AppDisabled::SIGNATURE_HASH,
];

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync + Clone>() {}
    is::<ChainClient>();
}
