//! The block follower: from one pinned block to the next, what may have changed.
//!
//! Invariants: the events of every block between the previously processed pinned block and the
//! new one are classified, and applied to the decision cache by the caller *before* it
//! publishes the new view; when that range cannot be read completely (the pin went back or was
//! replaced, the previous pin is no longer canonical, `eth_getLogs` failed, or too many blocks
//! passed) the whole cache is dropped instead. Logs are the union over the agreeing endpoints,
//! so one endpoint that hides an event cannot keep a revoked decision cached. A lagging answer
//! (a load-balanced provider, a restarted node) never moves the pin back, or a removal already
//! seen could be undone.

use crate::bindings::{AppAuth, KmsRegistry};
use crate::cache::Invalidation;
use crate::config::ChainConfig;
use crate::error::ChainError;
use crate::rpc::{BlockSummary, Connection};
use crate::view::{observe, still_canonical, View};
use alloy::primitives::{Address, B256};
use alloy::rpc::types::{Filter, Log};
use alloy::sol_types::SolEvent;
use futures::future::join_all;
use std::collections::HashSet;

/// Beyond this many blocks since the last processed one, the whole cache is dropped instead of
/// asking for the logs (providers cap `eth_getLogs` ranges, and a cold cache is safe).
const MAX_LOG_RANGE: u64 = 2_000;

/// The next view, and what changed since `prev` (the last processed view).
pub(crate) async fn next_view(
    endpoints: &[Connection],
    cfg: &ChainConfig,
    prev: Option<&View>,
) -> Result<(View, Invalidation), ChainError> {
    let mut view = observe(endpoints, cfg).await?;
    let Some(prev) = prev else {
        return Ok((view, Invalidation::Nothing));
    };
    if view.pinned.number < prev.pinned.number
        && still_canonical(endpoints, &prev.pinned, &view).await
    {
        // Lagging, not a reorg: keep the pin.
        view.pinned = prev.pinned;
    }
    let invalidation = changes_between(endpoints, cfg.registry, &prev.pinned, &view).await;
    Ok((view, invalidation))
}

/// What may have changed between the previously processed pinned block and the new one.
async fn changes_between(
    endpoints: &[Connection],
    registry: Address,
    prev: &BlockSummary,
    view: &View,
) -> Invalidation {
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
    // The new pinned block must descend from the one whose events we processed; otherwise the
    // events between them were on another fork and the range query would mislead us.
    let continuous = if new.number == prev.number + 1 {
        new.parent_hash == prev.hash
    } else {
        still_canonical(endpoints, prev, view).await
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
    let results = join_all(view.agreeing.iter().map(|&i| endpoints[i].logs(&filter))).await;
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
    classify(registry, &logs, new)
}

fn classify(registry: Address, logs: &[Log], pinned: &BlockSummary) -> Invalidation {
    let mut apps = HashSet::new();
    for log in logs {
        if log.block_number == Some(pinned.number) && log.block_hash != Some(pinned.hash) {
            return Invalidation::All("logs from another fork");
        }
        let Some(&topic0) = log.topics().first() else {
            continue;
        };
        if log.address() == registry {
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
        KmsRegistry::AnyKmsChipAllowedSet::SIGNATURE_HASH,
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
