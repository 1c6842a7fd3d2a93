//! How the client reads the chain: which endpoints, how many must agree, at which block.

use crate::transport::RpcEndpoint;
use alloy::primitives::Address;
use std::time::Duration;

/// Which block every authorization read is pinned to.
///
/// Reading at `latest` would let whoever produces the next block (or a lagging RPC node) decide
/// what the KMS sees; a block some confirmations deep, or the consensus layer's safe/finalized
/// block, costs an attacker a reorg of that depth to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAt {
    /// `latest - n`.
    Confirmations(u64),
    /// The `safe` block tag (post-merge chains).
    Safe,
    /// The `finalized` block tag (post-merge chains).
    Finalized,
}

impl std::str::FromStr for ReadAt {
    type Err = String;
    /// `safe`, `finalized`, or a number of confirmations.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "safe" => Ok(ReadAt::Safe),
            "finalized" => Ok(ReadAt::Finalized),
            n => n.parse().map(ReadAt::Confirmations).map_err(|_| {
                format!("{s:?} is not a block choice (expected safe, finalized or a number of confirmations)")
            }),
        }
    }
}

impl std::fmt::Display for ReadAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadAt::Confirmations(n) => write!(f, "latest-{n}"),
            ReadAt::Safe => f.write_str("safe"),
            ReadAt::Finalized => f.write_str("finalized"),
        }
    }
}

/// Configuration of a [`crate::ChainClient`]. Start from [`ChainConfig::new`] and change fields.
#[derive(Debug, Clone)]
pub struct ChainConfig {
    /// JSON-RPC endpoints, on distinct hosts, ideally run by different operators.
    pub endpoints: Vec<RpcEndpoint>,
    /// How many endpoints must return the same answer at the same block hash (k of n).
    pub quorum: usize,
    /// The `KmsRegistry` proxy address.
    pub registry: Address,
    /// If set, every endpoint must report this chain id.
    pub chain_id: Option<u64>,
    /// The block reads are pinned to.
    pub read_at: ReadAt,
    /// A chain whose pinned block (the one reads are made at) is older than this, by block
    /// timestamp, gives no decisions: a stalled `safe`/`finalized` would otherwise keep an old
    /// view, revocations invisible, behind a fresh `latest`.
    pub max_staleness: Duration,
    /// Timeout of one JSON-RPC request.
    pub request_timeout: Duration,
    /// Extra attempts after a failed request (transport errors and timeouts only).
    pub retries: u32,
    /// Upper bound on how long a cached decision is served, even without events.
    pub cache_ttl: Duration,
    /// How often the follower polls the head and the logs. Invalidation lags the pinned block by
    /// at most this, so keep it at or below the chain's block time.
    pub poll_interval: Duration,
    /// Decisions cached at most. At the bound, expired entries go first, and if none has
    /// expired the cache starts over (every BootInfo's next request reads the chain again).
    pub decision_cache: usize,
}

impl ChainConfig {
    /// One endpoint, k = 1, 3 confirmations, 5 min staleness, 5 s timeout, 2 retries,
    /// 10 min cache TTL, 2 s polling, 10 000 cached decisions.
    pub fn new(endpoint: RpcEndpoint, registry: Address) -> ChainConfig {
        ChainConfig {
            endpoints: vec![endpoint],
            quorum: 1,
            registry,
            chain_id: None,
            read_at: ReadAt::Confirmations(3),
            max_staleness: Duration::from_secs(300),
            request_timeout: Duration::from_secs(5),
            retries: 2,
            cache_ttl: Duration::from_secs(600),
            poll_interval: Duration::from_secs(2),
            decision_cache: 10_000,
        }
    }

    /// Rejects configurations that could never produce a decision, or whose quorum would not
    /// be k independent views (two endpoints on one host).
    pub fn validate(&self) -> Result<(), String> {
        if self.endpoints.is_empty() {
            return Err("no RPC URL configured".into());
        }
        if self.quorum == 0 || self.quorum > self.endpoints.len() {
            return Err(format!(
                "quorum {} is impossible with {} RPC URL(s): it must be between 1 and the number of URLs",
                self.quorum,
                self.endpoints.len()
            ));
        }
        // Two URLs of one host are one operator answering twice: a quorum of them is not k
        // independent views of the chain.
        let mut hosts = std::collections::BTreeMap::new();
        for e in &self.endpoints {
            if let Some(other) = hosts.insert(e.host(), e) {
                return Err(format!(
                    "RPC endpoints {other} and {e} are on the same host {}: the endpoints of a quorum must be distinct hosts",
                    e.host()
                ));
            }
        }
        if self.registry == Address::ZERO {
            return Err("registry address is zero; set it to the KmsRegistry proxy address".into());
        }
        if self.poll_interval.is_zero() || self.request_timeout.is_zero() {
            return Err("poll_interval and request_timeout must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_at_parses() {
        assert_eq!("safe".parse::<ReadAt>(), Ok(ReadAt::Safe));
        assert_eq!("Finalized".parse::<ReadAt>(), Ok(ReadAt::Finalized));
        assert_eq!("12".parse::<ReadAt>(), Ok(ReadAt::Confirmations(12)));
        assert!("latest".parse::<ReadAt>().is_err());
        assert!("-1".parse::<ReadAt>().is_err());
    }

    #[test]
    fn impossible_configurations_are_refused() {
        let ep = |u: &str| RpcEndpoint::new(u).unwrap();
        let ok = ChainConfig::new(ep("http://127.0.0.1:8545"), Address::repeat_byte(1));
        assert!(ok.validate().is_ok());
        let mut c = ok.clone();
        c.quorum = 2;
        assert!(c.validate().unwrap_err().contains("quorum 2"));
        let mut c = ok.clone();
        c.quorum = 0;
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.endpoints.clear();
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.endpoints.push(ep("http://127.0.0.1:8546"));
        c.quorum = 2;
        let e = c.validate().unwrap_err();
        assert!(e.contains("distinct hosts"), "{e}");
        c.endpoints[1] = ep("http://127.0.0.2:8546");
        assert!(c.validate().is_ok());
        let mut c = ok.clone();
        c.registry = Address::ZERO;
        assert!(c.validate().is_err());
    }
}
