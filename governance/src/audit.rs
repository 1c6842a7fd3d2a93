//! The audit trail: every event of a registry and its apps, decoded, with where and when it
//! happened. Backs `snpkms audit`.
//!
//! Audit reads use one endpoint at the requested blocks (not the quorum of [`snpkms_chain_client::ChainClient`]):
//! they decide nothing, and anyone can repeat them against another node.

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, Bytes, B256};
use alloy::rpc::types::{Filter, Log};
use alloy::sol_types::{SolEvent, SolEventInterface};
use serde::Serialize;
use snpkms_chain_client::bindings::{AppAuth, KmsRegistry};
use snpkms_chain_client::ChainError;
use snpkms_chain_client::Connection;
use snpkms_verifier::{Product, TcbVersion};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use tokio::sync::mpsc;

/// One decoded event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// Block the event was emitted in.
    pub block_number: u64,
    /// Unix seconds.
    pub block_timestamp: u64,
    /// Transaction that emitted it.
    pub tx_hash: B256,
    /// Position of the log in its block (orders events within a block).
    pub log_index: u64,
    /// The emitting contract: the registry, or an app (its AppAuth clone).
    pub contract: Address,
    /// Which event, with its arguments.
    #[serde(flatten)]
    pub kind: AuditKind,
}

/// The events of `KmsRegistry` and `AppAuth` (including the OpenZeppelin ones they emit), with
/// their arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", content = "args")]
pub enum AuditKind {
    /// Registry: someone registered a new app (deployed its `AppAuth` clone).
    AppRegistered {
        /// The new app's id (its clone's address).
        app: Address,
        /// Its owner: the account that registered it.
        owner: Address,
        /// The salt the owner chose; with the owner it determines the app's address.
        salt: B256,
    },
    /// App: a compose hash was allowed.
    ComposeHashAdded {
        /// The app (the emitting clone).
        app: Address,
        /// The allowed compose hash.
        compose_hash: B256,
    },
    /// App: a compose hash was disallowed.
    ComposeHashRemoved {
        /// The app (the emitting clone).
        app: Address,
        /// The disallowed compose hash.
        compose_hash: B256,
    },
    /// App: a device was allowed.
    DeviceAdded {
        /// The app (the emitting clone).
        app: Address,
        /// `keccak256` of the device's 64-byte chip id (the chip id itself is not on chain).
        device_id: B256,
    },
    /// App: a device was disallowed.
    DeviceRemoved {
        /// The app (the emitting clone).
        app: Address,
        /// `keccak256` of the device's 64-byte chip id.
        device_id: B256,
    },
    /// App: the "any device" switch was set.
    AllowAnyDeviceSet {
        /// The app (the emitting clone).
        app: Address,
        /// True: any chip may run the app; false: only its listed devices.
        allowed: bool,
    },
    /// App: the app was enabled (`enable`; apps also start enabled, without this event).
    AppEnabled {
        /// The app (the emitting clone).
        app: Address,
    },
    /// App: the app was disabled; its guests get no keys until it is enabled.
    AppDisabled {
        /// The app (the emitting clone).
        app: Address,
    },
    /// Registry: an app OS image was allowed.
    OsImageAdded {
        /// Its 48-byte launch measurement.
        measurement: Bytes,
    },
    /// Registry: an app OS image was disallowed.
    OsImageRemoved {
        /// Its 48-byte launch measurement.
        measurement: Bytes,
    },
    /// Registry: a KMS node image was allowed.
    KmsMeasurementAdded {
        /// Its 48-byte launch measurement.
        measurement: Bytes,
    },
    /// Registry: a KMS node image was disallowed.
    KmsMeasurementRemoved {
        /// Its 48-byte launch measurement.
        measurement: Bytes,
    },
    /// Registry: a KMS security-configuration digest was allowed.
    KmsConfigAdded {
        /// The digest (`snpkms node config-digest`).
        digest: B256,
    },
    /// Registry: a KMS security-configuration digest was disallowed.
    KmsConfigRemoved {
        /// The digest.
        digest: B256,
    },
    /// Registry: a chip was added to the KMS chip list.
    KmsChipAdded {
        /// `keccak256(chip_id)`.
        device_id: B256,
        /// The 64-byte chip id.
        chip_id: Bytes,
    },
    /// Registry: a chip was removed from the KMS chip list (an empty list allows no chip,
    /// unless any chip is allowed).
    KmsChipRemoved {
        /// `keccak256(chip_id)`.
        device_id: B256,
        /// The 64-byte chip id.
        chip_id: Bytes,
    },
    /// Registry: whether any chip may run a KMS node, whatever the chip list holds, was set.
    AnyKmsChipAllowedSet {
        /// True: any chip; false: only listed chips.
        allowed: bool,
    },
    /// Registry: a product's minimum TCB was set (until then, no report of the product is
    /// allowed; an all-zero minimum accepts any TCB).
    MinTcbSet {
        /// The registry's product number (0 Milan, 1 Genoa, 2 Turin), kept raw so that a number
        /// [`Product`] does not know is still shown.
        product: u8,
        /// The new minimum.
        tcb: TcbVersion,
    },
    /// Registry: the KMS root signing address and TLS public key were published.
    KmsInfoSet {
        /// Address of the KMS root signing key.
        root_signing_address: Address,
        /// The KMS nodes' TLS public key.
        tls_public_key: Bytes,
        /// The key epoch at that moment (`setKmsInfo` does not change it).
        epoch: u32,
    },
    /// Registry: the key epoch was incremented.
    KeyEpochBumped {
        /// The new epoch.
        epoch: u32,
    },
    /// Registry: a threshold share set was recorded (the first: the threshold mode begins; a
    /// later one: a re-share with the same group key). Its nodes follow as `ThresholdNodeSet`.
    ThresholdGroupSet {
        /// The share set's epoch (1, 2, ...).
        share_epoch: u32,
        /// How many nodes' answers make an app's keys.
        threshold: u16,
        /// The group key `s·G`, 33-byte compressed secp256k1.
        group_key: Bytes,
    },
    /// Registry: one node of a threshold share set.
    ThresholdNodeSet {
        /// The share set's epoch.
        share_epoch: u32,
        /// The node's index in the key generation.
        index: u16,
        /// Its verifying share `s_i·G`, 33-byte compressed secp256k1.
        verifying_share: Bytes,
        /// The address whose app key signatures count for it.
        signer: Address,
    },
    /// Registry: upgrades were turned off for good.
    UpgradesDisabled,
    /// Registry (ERC-1967 proxy): the implementation was set, at deployment or by an upgrade.
    Upgraded {
        /// The new implementation.
        implementation: Address,
    },
    /// Registry or app (`Ownable2Step`): an ownership transfer was proposed; it takes effect
    /// only when `new_owner` accepts it.
    OwnershipTransferStarted {
        /// The current owner, who proposed it.
        previous_owner: Address,
        /// The proposed owner.
        new_owner: Address,
    },
    /// Registry or app: ownership changed (also at initialization, from the zero address).
    OwnershipTransferred {
        /// The former owner (zero at initialization).
        previous_owner: Address,
        /// The owner from now on.
        new_owner: Address,
    },
    /// Registry or app (OpenZeppelin `Initializable`): the contract was initialized.
    Initialized {
        /// The initializer version reached (2 for a registry's `initialize` or `migrateToV2`,
        /// 1 for an app's, or a registry deployed before storage version 2).
        version: u64,
    },
    /// A log of the watched contracts that our ABI does not know.
    Unknown {
        /// The log's first topic (the event signature hash), zero for a log without topics.
        topic0: B256,
    },
}

impl AuditKind {
    /// The event's name.
    pub fn name(&self) -> &'static str {
        match self {
            AuditKind::AppRegistered { .. } => "AppRegistered",
            AuditKind::ComposeHashAdded { .. } => "ComposeHashAdded",
            AuditKind::ComposeHashRemoved { .. } => "ComposeHashRemoved",
            AuditKind::DeviceAdded { .. } => "DeviceAdded",
            AuditKind::DeviceRemoved { .. } => "DeviceRemoved",
            AuditKind::AllowAnyDeviceSet { .. } => "AllowAnyDeviceSet",
            AuditKind::AppEnabled { .. } => "AppEnabled",
            AuditKind::AppDisabled { .. } => "AppDisabled",
            AuditKind::OsImageAdded { .. } => "OsImageAdded",
            AuditKind::OsImageRemoved { .. } => "OsImageRemoved",
            AuditKind::KmsMeasurementAdded { .. } => "KmsMeasurementAdded",
            AuditKind::KmsMeasurementRemoved { .. } => "KmsMeasurementRemoved",
            AuditKind::KmsConfigAdded { .. } => "KmsConfigAdded",
            AuditKind::KmsConfigRemoved { .. } => "KmsConfigRemoved",
            AuditKind::KmsChipAdded { .. } => "KmsChipAdded",
            AuditKind::KmsChipRemoved { .. } => "KmsChipRemoved",
            AuditKind::AnyKmsChipAllowedSet { .. } => "AnyKmsChipAllowedSet",
            AuditKind::MinTcbSet { .. } => "MinTcbSet",
            AuditKind::KmsInfoSet { .. } => "KmsInfoSet",
            AuditKind::KeyEpochBumped { .. } => "KeyEpochBumped",
            AuditKind::ThresholdGroupSet { .. } => "ThresholdGroupSet",
            AuditKind::ThresholdNodeSet { .. } => "ThresholdNodeSet",
            AuditKind::UpgradesDisabled => "UpgradesDisabled",
            AuditKind::Upgraded { .. } => "Upgraded",
            AuditKind::OwnershipTransferStarted { .. } => "OwnershipTransferStarted",
            AuditKind::OwnershipTransferred { .. } => "OwnershipTransferred",
            AuditKind::Initialized { .. } => "Initialized",
            AuditKind::Unknown { .. } => "Unknown",
        }
    }

    /// The arguments, for a human.
    pub fn details(&self) -> String {
        match self {
            AuditKind::AppRegistered { app, owner, salt } => {
                format!("app {app} owner {owner} salt {salt}")
            }
            AuditKind::ComposeHashAdded { compose_hash, .. }
            | AuditKind::ComposeHashRemoved { compose_hash, .. } => {
                format!("compose hash {compose_hash}")
            }
            AuditKind::DeviceAdded { device_id, .. }
            | AuditKind::DeviceRemoved { device_id, .. } => {
                format!("device {device_id}")
            }
            AuditKind::AllowAnyDeviceSet { allowed, .. }
            | AuditKind::AnyKmsChipAllowedSet { allowed } => format!("allowed {allowed}"),
            AuditKind::AppEnabled { .. } | AuditKind::AppDisabled { .. } => String::new(),
            AuditKind::OsImageAdded { measurement }
            | AuditKind::OsImageRemoved { measurement }
            | AuditKind::KmsMeasurementAdded { measurement }
            | AuditKind::KmsMeasurementRemoved { measurement } => {
                format!("measurement {measurement}")
            }
            AuditKind::KmsConfigAdded { digest } | AuditKind::KmsConfigRemoved { digest } => {
                format!("config digest {digest}")
            }
            AuditKind::KmsChipAdded { device_id, .. }
            | AuditKind::KmsChipRemoved { device_id, .. } => {
                format!("device {device_id}")
            }
            AuditKind::MinTcbSet { product, tcb } => {
                let name = Product::from_chain_id(*product)
                    .map_or_else(|| format!("product {product}"), |p| p.to_string());
                format!("{name} {tcb}")
            }
            AuditKind::KmsInfoSet {
                root_signing_address,
                tls_public_key,
                epoch,
            } => format!(
                "root {root_signing_address} tls key {} bytes epoch {epoch}",
                tls_public_key.len()
            ),
            AuditKind::KeyEpochBumped { epoch } => format!("epoch {epoch}"),
            AuditKind::ThresholdGroupSet {
                share_epoch,
                threshold,
                group_key,
            } => format!("share epoch {share_epoch} threshold {threshold} group key {group_key}"),
            AuditKind::ThresholdNodeSet {
                share_epoch,
                index,
                verifying_share,
                signer,
            } => format!(
                "share epoch {share_epoch} node {index} verifying share {verifying_share} signer {signer}"
            ),
            AuditKind::UpgradesDisabled => String::new(),
            AuditKind::Upgraded { implementation } => format!("implementation {implementation}"),
            AuditKind::OwnershipTransferStarted {
                previous_owner,
                new_owner,
            }
            | AuditKind::OwnershipTransferred {
                previous_owner,
                new_owner,
            } => format!("{previous_owner} -> {new_owner}"),
            AuditKind::Initialized { version } => format!("version {version}"),
            AuditKind::Unknown { topic0 } => format!("topic0 {topic0}"),
        }
    }
}

fn from_registry(e: KmsRegistry::KmsRegistryEvents) -> AuditKind {
    use KmsRegistry::KmsRegistryEvents as E;
    match e {
        E::AppRegistered(e) => AuditKind::AppRegistered {
            app: e.app,
            owner: e.owner,
            salt: e.salt,
        },
        E::OsImageAdded(e) => AuditKind::OsImageAdded {
            measurement: e.measurement,
        },
        E::OsImageRemoved(e) => AuditKind::OsImageRemoved {
            measurement: e.measurement,
        },
        E::KmsMeasurementAdded(e) => AuditKind::KmsMeasurementAdded {
            measurement: e.measurement,
        },
        E::KmsMeasurementRemoved(e) => AuditKind::KmsMeasurementRemoved {
            measurement: e.measurement,
        },
        E::KmsConfigAdded(e) => AuditKind::KmsConfigAdded { digest: e.digest },
        E::KmsConfigRemoved(e) => AuditKind::KmsConfigRemoved { digest: e.digest },
        E::KmsChipAdded(e) => AuditKind::KmsChipAdded {
            device_id: e.deviceId,
            chip_id: e.chipId,
        },
        E::KmsChipRemoved(e) => AuditKind::KmsChipRemoved {
            device_id: e.deviceId,
            chip_id: e.chipId,
        },
        E::AnyKmsChipAllowedSet(e) => AuditKind::AnyKmsChipAllowedSet { allowed: e.allowed },
        E::MinTcbSet(e) => AuditKind::MinTcbSet {
            product: e.product,
            tcb: e.tcb.into(),
        },
        E::KmsInfoSet(e) => AuditKind::KmsInfoSet {
            root_signing_address: e.rootSigningAddress,
            tls_public_key: e.tlsPublicKey,
            epoch: e.epoch,
        },
        E::KeyEpochBumped(e) => AuditKind::KeyEpochBumped { epoch: e.epoch },
        E::UpgradesDisabled(_) => AuditKind::UpgradesDisabled,
        E::Upgraded(e) => AuditKind::Upgraded {
            implementation: e.implementation,
        },
        E::OwnershipTransferStarted(e) => AuditKind::OwnershipTransferStarted {
            previous_owner: e.previousOwner,
            new_owner: e.newOwner,
        },
        E::OwnershipTransferred(e) => AuditKind::OwnershipTransferred {
            previous_owner: e.previousOwner,
            new_owner: e.newOwner,
        },
        E::Initialized(e) => AuditKind::Initialized { version: e.version },
        E::ThresholdGroupSet(e) => AuditKind::ThresholdGroupSet {
            share_epoch: e.shareEpoch,
            threshold: e.threshold,
            group_key: e.groupKey,
        },
        E::ThresholdNodeSet(e) => AuditKind::ThresholdNodeSet {
            share_epoch: e.shareEpoch,
            index: e.index,
            verifying_share: e.verifyingShare,
            signer: e.signer,
        },
    }
}

fn from_app(e: AppAuth::AppAuthEvents) -> AuditKind {
    use AppAuth::AppAuthEvents as E;
    match e {
        E::ComposeHashAdded(e) => AuditKind::ComposeHashAdded {
            app: e.app,
            compose_hash: e.composeHash,
        },
        E::ComposeHashRemoved(e) => AuditKind::ComposeHashRemoved {
            app: e.app,
            compose_hash: e.composeHash,
        },
        E::DeviceAdded(e) => AuditKind::DeviceAdded {
            app: e.app,
            device_id: e.deviceId,
        },
        E::DeviceRemoved(e) => AuditKind::DeviceRemoved {
            app: e.app,
            device_id: e.deviceId,
        },
        E::AllowAnyDeviceSet(e) => AuditKind::AllowAnyDeviceSet {
            app: e.app,
            allowed: e.allowed,
        },
        E::AppEnabled(e) => AuditKind::AppEnabled { app: e.app },
        E::AppDisabled(e) => AuditKind::AppDisabled { app: e.app },
        E::OwnershipTransferStarted(e) => AuditKind::OwnershipTransferStarted {
            previous_owner: e.previousOwner,
            new_owner: e.newOwner,
        },
        E::OwnershipTransferred(e) => AuditKind::OwnershipTransferred {
            previous_owner: e.previousOwner,
            new_owner: e.newOwner,
        },
        E::Initialized(e) => AuditKind::Initialized { version: e.version },
    }
}

/// Reads the audit trail of one registry.
#[derive(Debug, Clone)]
pub struct AuditReader {
    endpoint: Connection,
    registry: Address,
    /// Block range of one `eth_getLogs` (providers limit it).
    chunk: u64,
}

/// Where a scan of the whole registry stands: the apps known so far.
#[derive(Debug, Default)]
struct Scope {
    apps: BTreeSet<Address>,
    apps_scanned_to: Option<u64>,
}

const ADDRESSES_PER_FILTER: usize = 500;

impl AuditReader {
    /// A reader of `registry`'s trail through the endpoint at `rpc_url` (30 s per request, 2
    /// retries). No request is made yet.
    pub fn new(rpc_url: &str, registry: Address) -> Result<AuditReader, ChainError> {
        Ok(AuditReader {
            endpoint: Connection::new(
                &snpkms_chain_client::RpcEndpoint::new(rpc_url)?,
                Duration::from_secs(30),
                2,
            )?,
            registry,
            chunk: 10_000,
        })
    }

    /// Blocks per `eth_getLogs` request (default 10 000).
    pub fn with_chunk(mut self, blocks: u64) -> AuditReader {
        self.chunk = blocks.max(1);
        self
    }

    /// The latest block number.
    pub async fn head(&self) -> Result<u64, ChainError> {
        Ok(self.endpoint.block(BlockNumberOrTag::Latest).await?.number)
    }

    /// All events of `app` (its AppAuth events and its registration), or of the registry and all
    /// its apps, in `from_block..=to_block` (default: latest), in chain order.
    pub async fn events(
        &self,
        app: Option<Address>,
        from_block: u64,
        to_block: Option<u64>,
    ) -> Result<Vec<AuditEvent>, ChainError> {
        let to = match to_block {
            Some(t) => t,
            None => self.head().await?,
        };
        self.events_in(app, from_block, to, &mut Scope::default())
            .await
    }

    /// New events as they are mined: everything from `from_block` on, then each new block
    /// `confirmations` deep, polled every `poll`. Stops when the receiver is dropped; an error
    /// is sent once and ends the stream.
    pub fn follow(
        &self,
        app: Option<Address>,
        from_block: u64,
        confirmations: u64,
        poll: Duration,
    ) -> mpsc::Receiver<Result<AuditEvent, ChainError>> {
        let (tx, rx) = mpsc::channel(256);
        let reader = self.clone();
        tokio::spawn(async move {
            let mut next = from_block;
            let mut scope = Scope::default();
            loop {
                let head = match reader.head().await {
                    Ok(h) => h.saturating_sub(confirmations),
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                if head >= next {
                    match reader.events_in(app, next, head, &mut scope).await {
                        Ok(events) => {
                            for e in events {
                                if tx.send(Ok(e)).await.is_err() {
                                    return;
                                }
                            }
                            next = head + 1;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = tx.closed() => return,
                }
            }
        });
        rx
    }

    async fn events_in(
        &self,
        app: Option<Address>,
        from: u64,
        to: u64,
        scope: &mut Scope,
    ) -> Result<Vec<AuditEvent>, ChainError> {
        if from > to {
            return Ok(Vec::new());
        }
        let mut logs = Vec::new();
        match app {
            Some(app) => {
                let registration = Filter::new()
                    .address(self.registry)
                    .event_signature(KmsRegistry::AppRegistered::SIGNATURE_HASH)
                    .topic1(app.into_word());
                logs.extend(self.logs_chunked(registration, from, to).await?);
                logs.extend(
                    self.logs_chunked(Filter::new().address(app), from, to)
                        .await?,
                );
            }
            None => {
                // Apps registered before `from` still emit events in range, so the app set is
                // built from the registry's whole history up to `to`.
                let scan_from = scope.apps_scanned_to.map_or(0, |b| b + 1);
                if scan_from <= to {
                    let registrations = Filter::new()
                        .address(self.registry)
                        .event_signature(KmsRegistry::AppRegistered::SIGNATURE_HASH);
                    for log in self.logs_chunked(registrations, scan_from, to).await? {
                        if let Some(t) = log.topics().get(1) {
                            scope.apps.insert(Address::from_word(*t));
                        }
                    }
                    scope.apps_scanned_to = Some(to);
                }
                let mut addresses = vec![self.registry];
                addresses.extend(scope.apps.iter().copied());
                for group in addresses.chunks(ADDRESSES_PER_FILTER) {
                    let f = Filter::new().address(group.to_vec());
                    logs.extend(self.logs_chunked(f, from, to).await?);
                }
            }
        }
        logs.sort_by_key(|l| (l.block_number, l.log_index));
        logs.dedup_by_key(|l| (l.block_number, l.log_index));
        let mut times: HashMap<u64, u64> = HashMap::new();
        let mut out = Vec::with_capacity(logs.len());
        for log in logs {
            out.push(self.decode(&log, &mut times).await?);
        }
        Ok(out)
    }

    async fn logs_chunked(
        &self,
        filter: Filter,
        from: u64,
        to: u64,
    ) -> Result<Vec<Log>, ChainError> {
        let mut out = Vec::new();
        let mut start = from;
        while start <= to {
            let end = to.min(start.saturating_add(self.chunk - 1));
            let f = filter.clone().from_block(start).to_block(end);
            out.extend(self.endpoint.logs(&f).await?);
            if end == u64::MAX {
                break;
            }
            start = end + 1;
        }
        Ok(out)
    }

    async fn decode(
        &self,
        log: &Log,
        times: &mut HashMap<u64, u64>,
    ) -> Result<AuditEvent, ChainError> {
        let missing = |what: &str| ChainError::BadResponse {
            url: self.endpoint.url.clone(),
            method: "eth_getLogs",
            detail: format!("log without {what} (pending?)"),
        };
        let block_number = log.block_number.ok_or_else(|| missing("block number"))?;
        let block_timestamp = match log.block_timestamp {
            Some(t) => t,
            None => match times.get(&block_number) {
                Some(&t) => t,
                None => {
                    let t = self
                        .endpoint
                        .block(BlockNumberOrTag::Number(block_number))
                        .await?
                        .timestamp;
                    times.insert(block_number, t);
                    t
                }
            },
        };
        let topic0 = log.topics().first().copied().unwrap_or_default();
        let kind = if log.address() == self.registry {
            KmsRegistry::KmsRegistryEvents::decode_log(&log.inner)
                .map(|e| from_registry(e.data))
                .unwrap_or(AuditKind::Unknown { topic0 })
        } else {
            AppAuth::AppAuthEvents::decode_log(&log.inner)
                .map(|e| from_app(e.data))
                .unwrap_or(AuditKind::Unknown { topic0 })
        };
        Ok(AuditEvent {
            block_number,
            block_timestamp,
            tx_hash: log
                .transaction_hash
                .ok_or_else(|| missing("transaction hash"))?,
            log_index: log.log_index.ok_or_else(|| missing("log index"))?,
            contract: log.address(),
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::Log as PrimitiveLog;
    use alloy::sol_types::SolEvent;

    /// The threshold mode's events decode from their log data with every argument, as the
    /// reader decodes a registry log.
    #[test]
    fn threshold_events_decode_with_their_arguments() {
        let registry = Address::repeat_byte(0x11);
        let signer = Address::repeat_byte(0x22);
        let share = Bytes::from(vec![3u8; 33]);
        let node = KmsRegistry::ThresholdNodeSet {
            shareEpoch: 2,
            index: 5,
            verifyingShare: share.clone(),
            signer,
        };
        let group = KmsRegistry::ThresholdGroupSet {
            shareEpoch: 2,
            threshold: 3,
            groupKey: share.clone(),
        };
        let decode = |data| {
            let log = PrimitiveLog {
                address: registry,
                data,
            };
            from_registry(
                KmsRegistry::KmsRegistryEvents::decode_log(&log)
                    .expect("decodes")
                    .data,
            )
        };
        let kind = decode(node.encode_log_data());
        assert_eq!(
            kind,
            AuditKind::ThresholdNodeSet {
                share_epoch: 2,
                index: 5,
                verifying_share: share.clone(),
                signer,
            }
        );
        assert_eq!(kind.name(), "ThresholdNodeSet");
        assert!(
            kind.details().contains("share epoch 2 node 5"),
            "{}",
            kind.details()
        );
        let kind = decode(group.encode_log_data());
        assert_eq!(kind.name(), "ThresholdGroupSet");
        assert!(kind.details().contains("threshold 3"), "{}", kind.details());
    }
}
