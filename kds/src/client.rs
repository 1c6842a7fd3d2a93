//! Fetching with the store first, one fetch per document at a time, bounded retries and
//! `429 Retry-After`.

use crate::document::Document;
use crate::error::{FetchError, KdsConfigError};
use crate::store::{CertStore, MAX_DOCUMENT};
use snpkms_chain_client::{http_client, RpcEndpoint};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// AMD's KDS.
pub const AMD_KDS_URL: &str = "https://kdsintf.amd.com";

/// Where and how to fetch.
#[derive(Debug, Clone)]
pub struct KdsSettings {
    /// Base URLs tried in order (AMD's KDS, then mirrors); empty: the store only.
    pub endpoints: Vec<RpcEndpoint>,
    /// Time for one request, connection included.
    pub timeout: Duration,
    /// Requests per URL before going on to the next (at least 1).
    pub attempts: u32,
    /// Wait before the first retry after an error; doubled for each further one.
    pub backoff: Duration,
    /// The longest `Retry-After` honoured: a KDS asking for more is given up on for now.
    pub max_retry_after: Duration,
    /// Documents fetched from the network at once, whatever their number: a client that
    /// sends reports naming chips no one has (their signatures cannot be checked before the
    /// VCEK is there) costs the KDS at most this many requests at a time.
    pub max_concurrent_fetches: usize,
    /// How long a document every URL said it does not have (404) is answered from memory
    /// without asking again (up to [`NOT_FOUND_ENTRIES`] documents).
    pub not_found_ttl: Duration,
    /// The longest one fetch may take over all URLs, retries and waits included: below the
    /// node's request timeout (30 s), so a slow KDS gives a clear UNAVAILABLE rather than a
    /// cancelled request.
    pub deadline: Duration,
}

/// Documents remembered as not found, at most.
pub const NOT_FOUND_ENTRIES: usize = 4096;

impl KdsSettings {
    /// `endpoints`, 5 s per request, 3 attempts per URL, backoff from 500 ms, a `Retry-After`
    /// of up to 10 s honoured, 4 fetches at once, 404s remembered for 60 s, 20 s in all.
    pub fn new(endpoints: Vec<RpcEndpoint>) -> KdsSettings {
        KdsSettings {
            endpoints,
            timeout: Duration::from_secs(5),
            attempts: 3,
            backoff: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(10),
            max_concurrent_fetches: 4,
            not_found_ttl: Duration::from_secs(60),
            deadline: Duration::from_secs(20),
        }
    }
}

/// Why `accept` did not take a copy.
#[derive(Debug)]
pub enum Rejection<E> {
    /// The copy itself is wrong (another chip's VCEK, a forged or expired chain): it is not
    /// kept, and the next source is tried.
    Document(E),
    /// The copy may be right but the caller cannot use it (the report it was fetched for does
    /// not verify with it): nothing is kept and nothing more is fetched.
    Caller(E),
}

/// What became of one lookup or one request, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOutcome {
    /// The store had an acceptable copy.
    StoreHit,
    /// A URL served an acceptable answer.
    Fetched,
    /// A request failed; the label says why (`not_found`, `rate_limited`, `timeout`,
    /// `unreachable`, `http_status`, `refused`, `too_large`).
    Failed(&'static str),
}

/// Told of every outcome (the node counts them in its metrics).
pub trait KdsObserver: Send + Sync + 'static {
    /// One outcome.
    fn outcome(&self, outcome: FetchOutcome);
}

/// An observer that ignores everything.
pub struct NoObserver;

impl KdsObserver for NoObserver {
    fn outcome(&self, _: FetchOutcome) {}
}

/// The client. Cheap to share (`Arc`); one per node.
pub struct KdsClient {
    sources: Vec<(RpcEndpoint, reqwest::Client)>,
    settings: KdsSettings,
    store: Option<CertStore>,
    observer: Arc<dyn KdsObserver>,
    /// One lock per document being fetched: concurrent callers for the same one wait for the
    /// first and then find it in the store (or fail the same way).
    inflight: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Bounds the network fetches in progress (see [`KdsSettings::max_concurrent_fetches`]).
    network: tokio::sync::Semaphore,
    /// Documents every URL said it has none of, and when.
    not_found: std::sync::Mutex<NotFound>,
    /// Copies a URL served that passed the document check, whether or not the caller could
    /// use them: a forged report naming a real chip asks for a VCEK once, not once per report.
    /// In memory only, bounded.
    fetched: std::sync::Mutex<Fetched>,
    /// Per URL (in `sources` order): until when it asked us, by a 429, not to come back.
    rate_limited_until: std::sync::Mutex<Vec<Option<Instant>>>,
}

/// Documents kept in memory, at most.
pub const FETCHED_ENTRIES: usize = 1024;

/// The longest a 429 keeps a URL from being asked.
const MAX_BACKOFF_AFTER_429: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Fetched {
    bytes: HashMap<String, Arc<Vec<u8>>>,
    order: std::collections::VecDeque<String>,
}

impl Fetched {
    fn insert(&mut self, key: &str, bytes: &[u8]) {
        if self
            .bytes
            .insert(key.to_string(), Arc::new(bytes.to_vec()))
            .is_none()
        {
            self.order.push_back(key.to_string());
        }
        while self.order.len() > FETCHED_ENTRIES {
            if let Some(old) = self.order.pop_front() {
                self.bytes.remove(&old);
            }
        }
    }
}

#[derive(Default)]
struct NotFound {
    at: HashMap<String, Instant>,
    order: std::collections::VecDeque<String>,
}

impl NotFound {
    fn recent(&self, key: &str, ttl: Duration) -> Option<Duration> {
        self.at
            .get(key)
            .map(Instant::elapsed)
            .filter(|age| *age < ttl)
    }

    fn insert(&mut self, key: String) {
        if self.at.insert(key.clone(), Instant::now()).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > NOT_FOUND_ENTRIES {
            if let Some(old) = self.order.pop_front() {
                self.at.remove(&old);
            }
        }
    }
}

enum Answer {
    Body(Vec<u8>),
    Status(reqwest::StatusCode, Option<Duration>),
}

impl KdsClient {
    /// A client for `settings`, keeping what it fetches in `store` (if any).
    pub fn new(
        settings: KdsSettings,
        store: Option<CertStore>,
        observer: Arc<dyn KdsObserver>,
    ) -> Result<KdsClient, KdsConfigError> {
        let sources = settings
            .endpoints
            .iter()
            .map(|e| {
                http_client(e)
                    .map(|c| (e.clone(), c))
                    .map_err(|err| KdsConfigError(err.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let settings_concurrency = settings.max_concurrent_fetches.max(1);
        let endpoint_count = settings.endpoints.len();
        Ok(KdsClient {
            sources,
            settings,
            store,
            observer,
            inflight: std::sync::Mutex::new(HashMap::new()),
            network: tokio::sync::Semaphore::new(settings_concurrency),
            not_found: std::sync::Mutex::new(NotFound::default()),
            fetched: std::sync::Mutex::new(Fetched::default()),
            rate_limited_until: std::sync::Mutex::new(vec![None; endpoint_count]),
        })
    }

    /// The store, if any.
    pub fn store(&self) -> Option<&CertStore> {
        self.store.as_ref()
    }

    /// The base URLs, as labels (no paths or queries).
    pub fn source_labels(&self) -> Vec<String> {
        self.sources.iter().map(|(e, _)| e.label()).collect()
    }

    /// The first copy of `doc` that `accept` takes: from the store, then from each URL in
    /// order. A downloaded copy it takes is stored (replacing a stored one it refused, which is
    /// never deleted: whether a copy is accepted may depend on the caller's moment, its clock
    /// and CRLs, and no caller may make the store forget what another needs).
    pub async fn fetch<T, E, F>(&self, doc: &Document, accept: F) -> Result<T, FetchError<E>>
    where
        F: Fn(&[u8]) -> Result<T, Rejection<E>> + Send + Sync,
        T: Send,
        E: std::error::Error + Send + 'static,
    {
        let slot = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            inflight.entry(doc.url_path.clone()).or_default().clone()
        };
        // Leaves the map however this call ends, a cancelled request included. It holds this
        // call's only reference to the entry: whatever borrows it below is gone before it
        // drops, so it sees the true count.
        let leave = Leave {
            client: self,
            key: &doc.url_path,
            slot: Some(slot),
        };
        // The deadline covers the wait for another caller's fetch of the same document too.
        let result = tokio::time::timeout(self.settings.deadline, async {
            let _one = match &leave.slot {
                Some(slot) => Some(slot.lock().await),
                None => None,
            };
            self.fetch_alone(doc, &accept).await
        })
        .await;
        drop(leave);
        result.unwrap_or_else(|_| {
            Err(FetchError::Unavailable {
                what: doc.what.clone(),
                sources: self.source_labels(),
                reasons: vec![format!(
                    "no answer within {} s in all",
                    self.settings.deadline.as_secs()
                )],
            })
        })
    }

    /// Documents being fetched now (for tests and metrics).
    pub fn in_flight(&self) -> usize {
        self.inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    async fn fetch_alone<T, E, F>(&self, doc: &Document, accept: &F) -> Result<T, FetchError<E>>
    where
        F: Fn(&[u8]) -> Result<T, Rejection<E>> + Send + Sync,
        T: Send,
        E: std::error::Error + Send + 'static,
    {
        let mut sources = Vec::new();
        let mut reasons = Vec::new();
        let remembered = self
            .fetched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .bytes
            .get(&doc.url_path)
            .cloned();
        if let Some(bytes) = remembered {
            // Refused now though right once (its validity, the caller's CRLs): ask again.
            if let Ok(answer) = self.take_kept(doc, &bytes, accept) {
                return answer;
            }
        }
        if let Some(store) = &self.store {
            sources.push("the store".into());
            match store.read(doc) {
                Ok(Some(bytes)) => match self.take_kept(doc, &bytes, accept) {
                    Ok(answer) => return answer,
                    Err(e) => {
                        tracing::warn!(
                            file = %store.path_of(doc).display(),
                            "the stored copy of {} does not verify: {e}",
                            doc.what
                        );
                        reasons.push(format!("the stored copy does not verify: {e}"));
                    }
                },
                Ok(None) => reasons.push("not in the store".into()),
                Err(e) => {
                    tracing::warn!("the store cannot be read: {e}");
                    reasons.push("the store cannot be read".into());
                }
            }
        }
        if self.sources.is_empty() {
            return Err(FetchError::Unavailable {
                what: doc.what.clone(),
                sources,
                reasons,
            });
        }
        let recently_missing = self
            .not_found
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recent(&doc.url_path, self.settings.not_found_ttl);
        if let Some(age) = recently_missing {
            self.observer.outcome(FetchOutcome::Failed("not_found"));
            sources.extend(self.source_labels());
            reasons.push(format!(
                "every KDS URL said it has none {} s ago",
                age.as_secs()
            ));
            return Err(FetchError::Unavailable {
                what: doc.what.clone(),
                sources,
                reasons,
            });
        }
        let network = async {
            // Waiting for a turn counts against the deadline. The semaphore is never closed;
            // were it, fetching without the bound would be wrong, so it is an outage.
            let Ok(_permit) = self.network.acquire().await else {
                return Err(FetchError::Unavailable {
                    what: doc.what.clone(),
                    sources: std::mem::take(&mut sources),
                    reasons: std::mem::take(&mut reasons),
                });
            };
            self.fetch_network(doc, accept, &mut sources, &mut reasons)
                .await
        };
        network.await
    }

    async fn fetch_network<T, E, F>(
        &self,
        doc: &Document,
        accept: &F,
        sources: &mut Vec<String>,
        reasons: &mut Vec<String>,
    ) -> Result<T, FetchError<E>>
    where
        F: Fn(&[u8]) -> Result<T, Rejection<E>> + Send + Sync,
        T: Send,
        E: std::error::Error + Send + 'static,
    {
        let mut refused: Option<(String, E)> = None;
        let mut not_found = 0;
        for (index, (endpoint, http)) in self.sources.iter().enumerate() {
            let label = endpoint.label();
            let until = self
                .rate_limited_until
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(index)
                .copied()
                .flatten();
            if let Some(left) = until.and_then(|t| t.checked_duration_since(Instant::now())) {
                self.observer.outcome(FetchOutcome::Failed("rate_limited"));
                reasons.push(format!(
                    "{label} asked not to be asked for {} s more (429)",
                    left.as_secs() + 1
                ));
                sources.push(label);
                continue;
            }
            let url = format!(
                "{}/{}",
                endpoint.url().as_str().trim_end_matches('/'),
                doc.url_path
            );
            let mut backoff = self.settings.backoff;
            for attempt in 1..=self.settings.attempts.max(1) {
                let started = Instant::now();
                let answer = self.get(http, &url).await;
                let last = attempt == self.settings.attempts.max(1);
                let wait = match answer {
                    Ok(Answer::Body(bytes)) => match accept(&bytes) {
                        Ok(value) => {
                            self.observer.outcome(FetchOutcome::Fetched);
                            tracing::info!(
                                source = %label,
                                elapsed_ms = started.elapsed().as_millis() as u64,
                                "fetched {}",
                                doc.what
                            );
                            self.remember(doc, &bytes);
                            self.keep(doc, &bytes);
                            return Ok(value);
                        }
                        Err(Rejection::Caller(error)) => {
                            self.remember(doc, &bytes);
                            return Err(FetchError::Unusable {
                                what: doc.what.clone(),
                                error,
                            });
                        }
                        Err(Rejection::Document(e)) => {
                            self.observer.outcome(FetchOutcome::Failed("refused"));
                            tracing::warn!(source = %label, "{} does not verify: {e}", doc.what);
                            reasons.push(format!("{label} served a copy that does not verify"));
                            refused.get_or_insert((label.clone(), e));
                            break;
                        }
                    },
                    Ok(Answer::Status(status, retry_after))
                        if status == reqwest::StatusCode::TOO_MANY_REQUESTS =>
                    {
                        self.observer.outcome(FetchOutcome::Failed("rate_limited"));
                        let wait = retry_after.unwrap_or(backoff);
                        if wait > self.settings.max_retry_after || last {
                            reasons.push(format!(
                                "{label} is rate limiting (429, retry after {} s)",
                                wait.as_secs()
                            ));
                            // Every caller stays away until then, not only this one.
                            self.rate_limited_until
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())[index] =
                                Some(Instant::now() + wait.min(MAX_BACKOFF_AFTER_429));
                            break;
                        }
                        tracing::info!(source = %label, "KDS rate limit: retrying {} in {} ms", doc.what, wait.as_millis());
                        wait
                    }
                    Ok(Answer::Status(status, _)) if status == reqwest::StatusCode::NOT_FOUND => {
                        self.observer.outcome(FetchOutcome::Failed("not_found"));
                        reasons.push(format!("{label} has none (404)"));
                        not_found += 1;
                        break;
                    }
                    Ok(Answer::Status(status, _)) => {
                        self.observer.outcome(FetchOutcome::Failed("http_status"));
                        if !status.is_server_error() || last {
                            reasons.push(format!("{label} answered {status}"));
                            break;
                        }
                        backoff
                    }
                    Err((kind, message)) => {
                        self.observer.outcome(FetchOutcome::Failed(kind));
                        if last || kind == "too_large" {
                            reasons.push(format!("{label}: {}", endpoint.redact(&message)));
                            break;
                        }
                        backoff
                    }
                };
                tokio::time::sleep(wait).await;
                backoff = backoff.saturating_mul(2);
            }
            sources.push(label);
        }
        if not_found == self.sources.len() {
            self.not_found
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(doc.url_path.clone());
        }
        match refused {
            Some((source_label, error)) => Err(FetchError::Refused {
                what: doc.what.clone(),
                source_label,
                error,
            }),
            None => Err(FetchError::Unavailable {
                what: doc.what.clone(),
                sources: std::mem::take(sources),
                reasons: std::mem::take(reasons),
            }),
        }
    }

    /// A kept copy (in memory or in the store) as `accept` sees it: `Ok` with the answer to
    /// give, or `Err` with why the copy itself is refused (other sources are then asked).
    fn take_kept<T, E, F>(
        &self,
        doc: &Document,
        bytes: &[u8],
        accept: &F,
    ) -> Result<Result<T, FetchError<E>>, E>
    where
        F: Fn(&[u8]) -> Result<T, Rejection<E>> + Send + Sync,
        E: std::error::Error + Send + 'static,
    {
        match accept(bytes) {
            Ok(value) => {
                self.observer.outcome(FetchOutcome::StoreHit);
                Ok(Ok(value))
            }
            Err(Rejection::Caller(error)) => Ok(Err(FetchError::Unusable {
                what: doc.what.clone(),
                error,
            })),
            Err(Rejection::Document(e)) => Err(e),
        }
    }

    fn remember(&self, doc: &Document, bytes: &[u8]) {
        self.fetched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(&doc.url_path, bytes);
    }

    fn keep(&self, doc: &Document, bytes: &[u8]) {
        if let Some(store) = &self.store {
            if let Err(e) = store.write(doc, bytes) {
                tracing::warn!(
                    file = %store.path_of(doc).display(),
                    "could not keep {} in the store: {e}",
                    doc.what
                );
            }
        }
    }

    async fn get(
        &self,
        http: &reqwest::Client,
        url: &str,
    ) -> Result<Answer, (&'static str, String)> {
        let request = async {
            let mut response = http
                .get(url)
                .send()
                .await
                .map_err(|e| ("unreachable", e.to_string()))?;
            let status = response.status();
            if !status.is_success() {
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                return Ok(Answer::Status(status, retry_after));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| ("unreachable", e.to_string()))?
            {
                if body.len() + chunk.len() > MAX_DOCUMENT {
                    return Err((
                        "too_large",
                        format!("answer larger than {MAX_DOCUMENT} bytes"),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Answer::Body(body))
        };
        tokio::time::timeout(self.settings.timeout, request)
            .await
            .unwrap_or_else(|_| {
                Err((
                    "timeout",
                    format!("no answer within {} s", self.settings.timeout.as_secs_f32()),
                ))
            })
    }
}

/// Leaves the in-flight map when a fetch ends, however it ends.
struct Leave<'a> {
    client: &'a KdsClient,
    key: &'a str,
    slot: Option<Arc<tokio::sync::Mutex<()>>>,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let mut inflight = self
            .client
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Our reference goes under the map's lock, so that of two callers leaving at once
        // the last one always sees the map's reference alone and removes it.
        drop(self.slot.take());
        let idle = inflight
            .get(self.key)
            .is_some_and(|entry| Arc::strong_count(entry) == 1);
        if idle {
            inflight.remove(self.key);
        }
    }
}
