//! One JSON-RPC endpoint with a per-request timeout and bounded retries ([`Connection`]), and
//! the typed errors its failures map to.

use crate::error::{decode_revert, ChainError};
use crate::transport::{tls_failure, RpcEndpoint};
use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, B256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, Log, TransactionRequest};
use alloy::transports::{RpcError, TransportError, TransportErrorKind};
use std::future::Future;
use std::time::Duration;

/// What the client keeps of a block header. Endpoints vote on all of it, not only the hash: a
/// single endpoint must not choose the timestamp staleness is judged on, or the parent hash
/// continuity is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BlockSummary {
    /// Height.
    pub number: u64,
    /// Which block at that height.
    pub hash: B256,
    /// Its parent: what continuity is judged on.
    pub parent_hash: B256,
    /// Unix seconds: what staleness is judged on.
    pub timestamp: u64,
}

impl BlockSummary {
    /// Number and hash.
    pub fn block_ref(&self) -> crate::BlockRef {
        crate::BlockRef {
            number: self.number,
            hash: self.hash,
        }
    }
}

/// One endpoint: its provider, the timeout of one request and how often a transport failure is
/// retried.
#[derive(Clone)]
pub struct Connection {
    /// What messages call this endpoint: `scheme://host:port`, never the API key in its path.
    pub url: String,
    /// The endpoint and its TLS rules.
    pub endpoint: RpcEndpoint,
    provider: DynProvider,
    timeout: Duration,
    retries: u32,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.url)
            .finish()
    }
}

impl Connection {
    /// A connection to `endpoint` (no request is made yet).
    pub fn new(
        endpoint: &RpcEndpoint,
        timeout: Duration,
        retries: u32,
    ) -> Result<Connection, ChainError> {
        let provider = endpoint.provider()?;
        Ok(Connection {
            url: endpoint.label(),
            endpoint: endpoint.clone(),
            provider,
            timeout,
            retries,
        })
    }

    /// Runs `op` with the timeout, retrying transport failures and timeouts only: an error
    /// answer from the node is an answer, and repeating it would not change it.
    async fn with_retry<T, F, Fut>(&self, method: &'static str, op: F) -> Result<T, ChainError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        let attempts = self.retries + 1;
        let mut last = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            match tokio::time::timeout(self.timeout, op()).await {
                Err(_) => {
                    last = Some(ChainError::Timeout {
                        url: self.url.clone(),
                        method,
                        timeout_ms: self.timeout.as_millis() as u64,
                        attempts: attempt + 1,
                    })
                }
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => {
                    let retryable = is_transient(&e);
                    let err = map_transport_error(&self.endpoint, method, e);
                    if !retryable {
                        return Err(err);
                    }
                    tracing::debug!(url = %self.url, method, attempt, error = %err, "RPC request failed");
                    last = Some(err);
                }
            }
        }
        Err(last.unwrap_or_else(|| ChainError::Unreachable {
            url: self.url.clone(),
            reason: "no attempt made".into(),
        }))
    }

    /// The alloy provider, for calls this type has no method for (errors through
    /// [`map_transport_error`]).
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// `eth_chainId`.
    pub async fn chain_id(&self) -> Result<u64, ChainError> {
        self.with_retry("eth_chainId", || async {
            self.provider.get_chain_id().await
        })
        .await
    }

    /// Length of the code at `address` in the block with hash `block`.
    pub async fn code_len(&self, address: Address, block: B256) -> Result<usize, ChainError> {
        self.with_retry("eth_getCode", || async {
            self.provider
                .get_code_at(address)
                .block_id(BlockId::hash(block))
                .await
        })
        .await
        .map(|c| c.len())
    }

    /// The summary of a block by number or tag.
    pub async fn block(&self, tag: BlockNumberOrTag) -> Result<BlockSummary, ChainError> {
        let block = self
            .with_retry("eth_getBlockByNumber", || async {
                self.provider.get_block_by_number(tag).await
            })
            .await?;
        let block = block.ok_or_else(|| ChainError::Rpc {
            url: self.url.clone(),
            method: "eth_getBlockByNumber",
            message: format!("the node does not have block {tag}"),
        })?;
        Ok(BlockSummary {
            number: block.header.inner.number,
            hash: block.header.hash,
            parent_hash: block.header.inner.parent_hash,
            timestamp: block.header.inner.timestamp,
        })
    }

    /// `eth_call` at exactly the block with this hash. `requireCanonical` makes a node that has
    /// the block only on a side fork refuse instead of answering from a state we did not pin.
    pub async fn call(&self, to: Address, data: &Bytes, block: B256) -> Result<Bytes, ChainError> {
        let tx = TransactionRequest::default()
            .with_to(to)
            .with_input(data.clone());
        self.with_retry("eth_call", || async {
            self.provider
                .call(tx.clone())
                .block(BlockId::hash_canonical(block))
                .await
        })
        .await
    }

    /// `eth_call` at a block number or tag (for tools that need no pinning, like `show`).
    pub async fn call_at(
        &self,
        to: Address,
        data: &Bytes,
        block: BlockId,
    ) -> Result<Bytes, ChainError> {
        let tx = TransactionRequest::default()
            .with_to(to)
            .with_input(data.clone());
        self.with_retry("eth_call", || async {
            self.provider.call(tx.clone()).block(block).await
        })
        .await
    }

    /// `eth_getLogs`.
    pub async fn logs(&self, filter: &Filter) -> Result<Vec<Log>, ChainError> {
        self.with_retry("eth_getLogs", || async {
            self.provider.get_logs(filter).await
        })
        .await
    }
}

/// Maps an alloy transport error to ours; revert data becomes [`ChainError::Contract`]. Every
/// text taken from the error is redacted: transport errors quote the full URL, API key and all.
pub fn map_transport_error(
    endpoint: &RpcEndpoint,
    method: &'static str,
    e: TransportError,
) -> ChainError {
    let url = endpoint.label();
    let url = url.as_str();
    let clean = |s: String| endpoint.redact(&s);
    match e {
        RpcError::ErrorResp(payload) => match payload.as_revert_data() {
            Some(data) => ChainError::Contract(decode_revert(&data)),
            None => ChainError::Rpc {
                url: url.to_string(),
                method,
                message: clean(format!("{} (code {})", payload.message, payload.code)),
            },
        },
        RpcError::Transport(TransportErrorKind::HttpError(h)) => ChainError::Rpc {
            url: url.to_string(),
            method,
            message: format!("HTTP status {}", h.status),
        },
        RpcError::Transport(kind) => match tls_failure(&kind) {
            Some(reason) => ChainError::Tls {
                url: url.to_string(),
                reason: clean(reason),
            },
            None => ChainError::Unreachable {
                url: url.to_string(),
                reason: clean(error_chain(&kind)),
            },
        },
        RpcError::NullResp => ChainError::BadResponse {
            url: url.to_string(),
            method,
            detail: "null result".into(),
        },
        other => ChainError::BadResponse {
            url: url.to_string(),
            method,
            detail: clean(other.to_string()),
        },
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(50u64 << attempt.min(5))
}

/// Connection failures, 5xx and 429 are worth another try; anything the node answered is not.
fn is_transient(e: &TransportError) -> bool {
    match e {
        RpcError::Transport(TransportErrorKind::HttpError(h)) => {
            h.status == 429 || (500..600).contains(&h.status)
        }
        RpcError::Transport(TransportErrorKind::HttpErrorWithRetryAfter { .. }) => true,
        // A refused certificate stays refused; anything else at the connection level may pass.
        RpcError::Transport(TransportErrorKind::Custom(e)) => tls_failure(e.as_ref()).is_none(),
        RpcError::Transport(TransportErrorKind::BackendGone) => true,
        _ => false,
    }
}

/// The error and its sources on one line: reqwest's top-level message alone ("error sending
/// request") does not say that the connection was refused.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let msg = inner.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        src = inner.source();
    }
    s
}
