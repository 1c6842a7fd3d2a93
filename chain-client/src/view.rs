//! The chain view every read is pinned to.
//!
//! Invariants: the pinned block is the k-th highest head minus the confirmations (or the k-th
//! highest `safe`/`finalized` block), so fewer than k endpoints cannot make the chain look
//! longer; its whole summary (number, hash, parent, timestamp) is what a quorum agreed on
//! ([`crate::quorum`]); and a view whose *pinned* block is older than `max_staleness` decides
//! nothing, however fresh the head (a stalled finality hides revocations).

use crate::config::{ChainConfig, ReadAt};
use crate::error::ChainError;
use crate::quorum::{too_few, winner, Winner};
use crate::rpc::{BlockSummary, Connection};
use alloy::eips::BlockNumberOrTag;
use futures::future::join_all;
use std::collections::BTreeMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The picture of the chain after one poll.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// The k-th newest head among the endpoints: where the registry's code is checked.
    pub head: BlockSummary,
    /// The block all reads are made at.
    pub pinned: BlockSummary,
    /// Indices of the endpoints that agreed on `pinned`.
    pub agreeing: Vec<usize>,
    /// When this view was taken (monotonic).
    pub at: Instant,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Refuses a view whose pinned block is older than `max_staleness`.
pub(crate) fn check_stale(cfg: &ChainConfig, view: &View) -> Result<(), ChainError> {
    let age = unix_now().saturating_sub(view.pinned.timestamp);
    let max = cfg.max_staleness.as_secs();
    if age > max {
        return Err(ChainError::Stale {
            block: view.pinned.number,
            read_at: cfg.read_at.to_string(),
            age_secs: age,
            max_secs: max,
        });
    }
    Ok(())
}

/// Heads of all endpoints -> the pinned block number -> the block at that number, whose
/// summary k endpoints must agree on.
pub(crate) async fn observe(
    endpoints: &[Connection],
    cfg: &ChainConfig,
) -> Result<View, ChainError> {
    let k = cfg.quorum;
    let n = endpoints.len();
    let heads = join_all(endpoints.iter().map(|e| e.block(BlockNumberOrTag::Latest))).await;
    let mut ok: Vec<(usize, BlockSummary)> = Vec::new();
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

    let target = match cfg.read_at {
        ReadAt::Confirmations(c) => numbers[k - 1].saturating_sub(c),
        ReadAt::Safe | ReadAt::Finalized => {
            let tag = if cfg.read_at == ReadAt::Safe {
                BlockNumberOrTag::Safe
            } else {
                BlockNumberOrTag::Finalized
            };
            let tagged = join_all(ok.iter().map(|&(i, _)| endpoints[i].block(tag))).await;
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
            endpoints[i].block(BlockNumberOrTag::Number(target)).await
        }
    }))
    .await;
    // The vote is on the whole summary (number, hash, parent, timestamp): with the hash alone,
    // whichever endpoint answered last would set the timestamp staleness is judged on.
    let mut by_block: BTreeMap<BlockSummary, Vec<usize>> = BTreeMap::new();
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
                let urls: Vec<&str> = idx.iter().map(|&i| endpoints[i].url.as_str()).collect();
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
    match winner(&by_block, k) {
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

/// Do all endpoints that agreed on `view` still have `block` at its height?
pub(crate) async fn still_canonical(
    endpoints: &[Connection],
    block: &BlockSummary,
    view: &View,
) -> bool {
    let found = join_all(
        view.agreeing
            .iter()
            .map(|&i| endpoints[i].block(BlockNumberOrTag::Number(block.number))),
    )
    .await;
    found
        .iter()
        .all(|b| matches!(b, Ok(b) if b.hash == block.hash))
}
