//! Current state of a registry or an app, for `snpkms gov show` / `snpkms app show`. Mappings
//! cannot be enumerated on chain, so the lists (OS images, compose hashes, ...) are replayed
//! from the audit trail; the scalar values are read at the same block.

use crate::audit::{AuditKind, AuditReader};
use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::primitives::{b256, Address, Bytes, B256};
use alloy::providers::Provider;
use alloy::sol_types::SolCall;
use serde::Serialize;
use snpkms_chain_client::bindings::{AppAuth, KmsRegistry};
use snpkms_chain_client::BlockRef;
use snpkms_chain_client::ChainError;
use snpkms_chain_client::Connection;
use snpkms_verifier::{Product, TcbVersion};
use std::collections::BTreeMap;
use std::time::Duration;

/// ERC-1967 implementation slot: `keccak256("eip1967.proxy.implementation") - 1`.
const IMPLEMENTATION_SLOT: B256 =
    b256!("360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc");

/// A registry's current configuration ([`Inspector::registry`]).
#[derive(Debug, Clone, Serialize)]
pub struct RegistryStatus {
    /// The registry (proxy) address.
    pub registry: Address,
    /// EIP-155 chain id of the endpoint.
    pub chain_id: u64,
    /// The block every value is as of: the head when the call started (lists are replayed up
    /// to it).
    pub block: BlockRef,
    /// The registry owner, who sends every governance transaction.
    pub owner: Address,
    /// The owner proposed by `transferOwnership` who has not yet called `acceptOwnership`
    /// (two-step transfer); zero when none.
    pub pending_owner: Address,
    /// The `KmsRegistry` implementation behind the proxy, read from its ERC-1967 slot.
    pub implementation: Address,
    /// The `AppAuth` implementation that `registerApp` clones.
    pub app_auth_implementation: Address,
    /// Whether `disableUpgrades` was called: the implementation can then never change.
    pub upgrades_disabled: bool,
    /// The KMS root signing key's address, which signs every app signing key; zero until
    /// `setKmsInfo`, and while it is zero `verifyAppKey` accepts no signature.
    pub kms_root_signing_address: Address,
    /// The KMS nodes' TLS public key as published by `setKmsInfo` (empty until then).
    pub kms_tls_public_key: Bytes,
    /// The current key epoch (0 until the first `bumpKeyEpoch`).
    pub key_epoch: u32,
    /// Number of registered apps (saturates at `u64::MAX`).
    pub app_count: u64,
    /// Minimum TCB of each product governance set one for. A product missing here is refused
    /// ("no minimum tcb for product"); an all-zero minimum accepts any TCB.
    pub min_tcb: BTreeMap<Product, TcbVersion>,
    /// Allowed app OS images (48-byte launch measurements), in the order they were added.
    pub os_images: Vec<Bytes>,
    /// Allowed KMS node images (48-byte launch measurements), in the order they were added.
    pub kms_measurements: Vec<Bytes>,
    /// Allowed KMS security-configuration digests.
    pub kms_configs: Vec<B256>,
    /// Chip ids (64 bytes) listed to run KMS nodes. Only these may, unless
    /// `any_kms_chip_allowed`; an empty list allows none.
    pub kms_chips: Vec<Bytes>,
    /// Whether any chip may run a KMS node, whatever `kms_chips` holds.
    pub any_kms_chip_allowed: bool,
}

/// An app's current authorization policy ([`Inspector::app`]). For an address the registry
/// does not know, `registered` is false and every field but `app` and `block` is zero or
/// empty.
#[derive(Debug, Clone, Serialize)]
pub struct AppStatus {
    /// The app id: its `AppAuth` clone's address.
    pub app: Address,
    /// The block every value is as of: the head when the call started (lists are replayed up
    /// to it).
    pub block: BlockRef,
    /// Whether the registry registered this app (`isAppRegistered`).
    pub registered: bool,
    /// The app owner, who sends the app's transactions.
    pub owner: Address,
    /// The owner proposed by a two-step ownership transfer not yet accepted; zero when none.
    pub pending_owner: Address,
    /// Whether the app's guests may get keys at all.
    pub enabled: bool,
    /// Whether any chip may run the app; when false only the chips in `devices` may.
    pub allow_any_device: bool,
    /// Allowed compose hashes, in the order they were added.
    pub compose_hashes: Vec<B256>,
    /// Allowed devices (`keccak256(chip_id)`, see [`crate::device_id`]), in the order they were
    /// added.
    pub devices: Vec<B256>,
}

/// Reads the status views at one block (the latest when the reader starts).
pub struct Inspector {
    endpoint: Connection,
    audit: AuditReader,
    registry: Address,
    from_block: u64,
}

/// What the registry says, at one block, about a machine that would run a KMS node
/// ([`Inspector::kms_standing`]): what governance checks a bootstrap's evidence against
/// besides the evidence itself.
#[derive(Debug, Clone, Serialize)]
pub struct KmsStanding {
    /// The block the values were read at.
    pub block: BlockRef,
    /// The machine's product.
    pub product: Product,
    /// The product's minimum TCB; `None` when governance set none (the product is refused).
    pub min_tcb: Option<TcbVersion>,
    /// Whether the KMS image (launch measurement) is allowed.
    pub measurement_allowed: bool,
    /// Whether the chip is on the KMS chip list.
    pub chip_listed: bool,
    /// Whether any chip may run a KMS node, listed or not.
    pub any_chip_allowed: bool,
}

impl KmsStanding {
    /// What the registry would refuse about a node of this image and chip whose reports carry
    /// these reported, committed and launch TCBs (empty: nothing), in the registry's words.
    pub fn refusals(&self, tcbs: [(&str, TcbVersion); 3]) -> Vec<String> {
        let mut out = Vec::new();
        if !self.measurement_allowed {
            out.push("kms measurement not allowed".to_string());
        }
        match &self.min_tcb {
            None => out.push(format!("no minimum tcb for product ({})", self.product)),
            Some(min) => {
                for (name, tcb) in tcbs {
                    if let Some((component, have, need)) = tcb.first_below(min) {
                        out.push(format!(
                            "tcb below minimum: {name} TCB {component} {have} < {need}"
                        ));
                    }
                }
            }
        }
        if !self.chip_listed && !self.any_chip_allowed {
            out.push("kms chip not allowed".to_string());
        }
        out
    }
}

impl Inspector {
    /// The latest block and the chain id, once the registry is known to be deployed there
    /// ([`ChainError::NoContract`] otherwise).
    async fn head_with_registry(&self) -> Result<(BlockRef, u64), ChainError> {
        let head = self.endpoint.block(BlockNumberOrTag::Latest).await?;
        let chain_id = self.endpoint.chain_id().await?;
        if self.endpoint.code_len(self.registry, head.hash).await? == 0 {
            return Err(ChainError::NoContract {
                address: self.registry,
                chain_id,
            });
        }
        Ok((
            BlockRef {
                number: head.number,
                hash: head.hash,
            },
            chain_id,
        ))
    }

    /// The registry's view, at the latest block, of a KMS node of `product` on `chip_id`
    /// running `measurement`: point reads only, no history needed.
    pub async fn kms_standing(
        &self,
        product: Product,
        measurement: &[u8; 48],
        chip_id: &[u8; 64],
    ) -> Result<KmsStanding, ChainError> {
        let (head, _) = self.head_with_registry().await?;
        let (r, h) = (self.registry, head.hash);
        let p = product.chain_id();
        let min_tcb = if self
            .read(r, KmsRegistry::isMinTcbSetCall { product: p }, h)
            .await?
        {
            Some(
                self.read(r, KmsRegistry::minTcbCall { product: p }, h)
                    .await?
                    .into(),
            )
        } else {
            None
        };
        Ok(KmsStanding {
            block: head,
            product,
            min_tcb,
            measurement_allowed: self
                .read(
                    r,
                    KmsRegistry::isKmsMeasurementAllowedCall {
                        measurement: Bytes::copy_from_slice(measurement),
                    },
                    h,
                )
                .await?,
            chip_listed: self
                .read(
                    r,
                    KmsRegistry::isKmsChipListedCall {
                        chipId: Bytes::copy_from_slice(chip_id),
                    },
                    h,
                )
                .await?,
            any_chip_allowed: self
                .read(r, KmsRegistry::anyKmsChipAllowedCall {}, h)
                .await?,
        })
    }

    /// `from_block`: where the registry's history starts (its deployment block; 0 works too).
    pub fn new(rpc_url: &str, registry: Address, from_block: u64) -> Result<Inspector, ChainError> {
        Ok(Inspector {
            endpoint: Connection::new(
                &snpkms_chain_client::RpcEndpoint::new(rpc_url)?,
                Duration::from_secs(30),
                2,
            )?,
            audit: AuditReader::new(rpc_url, registry)?,
            registry,
            from_block,
        })
    }

    async fn read<C: SolCall>(
        &self,
        to: Address,
        call: C,
        block: B256,
    ) -> Result<C::Return, ChainError> {
        let raw = self
            .endpoint
            .call_at(to, &call.abi_encode().into(), BlockId::hash(block))
            .await?;
        C::abi_decode_returns(&raw).map_err(|e| ChainError::BadResponse {
            url: self.endpoint.url.clone(),
            method: "eth_call",
            detail: format!("{}: {e}", C::SIGNATURE),
        })
    }

    /// The registry's status at the latest block. [`ChainError::NoContract`] when nothing is
    /// deployed at the registry address on this chain.
    pub async fn registry(&self) -> Result<RegistryStatus, ChainError> {
        let (head, chain_id) = self.head_with_registry().await?;
        let r = self.registry;
        let h = head.hash;
        let info = self.read(r, KmsRegistry::kmsInfoCall {}, h).await?;
        let mut min_tcb = BTreeMap::new();
        for p in Product::ALL {
            let set = self
                .read(
                    r,
                    KmsRegistry::isMinTcbSetCall {
                        product: p.chain_id(),
                    },
                    h,
                )
                .await?;
            if !set {
                continue;
            }
            let t = self
                .read(
                    r,
                    KmsRegistry::minTcbCall {
                        product: p.chain_id(),
                    },
                    h,
                )
                .await?;
            min_tcb.insert(p, t.into());
        }
        let slot = self
            .endpoint
            .provider()
            .get_storage_at(r, IMPLEMENTATION_SLOT.into())
            .block_id(BlockId::hash(h))
            .await
            .map_err(|e| {
                snpkms_chain_client::map_transport_error(
                    &self.endpoint.endpoint,
                    "eth_getStorageAt",
                    e,
                )
            })?;
        let mut status = RegistryStatus {
            registry: r,
            chain_id,
            block: head,
            owner: self.read(r, KmsRegistry::ownerCall {}, h).await?,
            pending_owner: self.read(r, KmsRegistry::pendingOwnerCall {}, h).await?,
            implementation: Address::from_word(slot.into()),
            app_auth_implementation: self
                .read(r, KmsRegistry::appAuthImplementationCall {}, h)
                .await?,
            upgrades_disabled: self
                .read(r, KmsRegistry::upgradesDisabledCall {}, h)
                .await?,
            kms_root_signing_address: info.rootSigningAddress,
            kms_tls_public_key: info.tlsPublicKey,
            key_epoch: info.keyEpoch_,
            app_count: self
                .read(r, KmsRegistry::appCountCall {}, h)
                .await?
                .try_into()
                .unwrap_or(u64::MAX),
            min_tcb,
            os_images: Vec::new(),
            kms_measurements: Vec::new(),
            kms_configs: Vec::new(),
            kms_chips: Vec::new(),
            any_kms_chip_allowed: self
                .read(r, KmsRegistry::anyKmsChipAllowedCall {}, h)
                .await?,
        };
        for e in self
            .audit
            .events(None, self.from_block, Some(head.number))
            .await?
        {
            if e.contract != r {
                continue;
            }
            match e.kind {
                AuditKind::OsImageAdded { measurement } => status.os_images.push(measurement),
                AuditKind::OsImageRemoved { measurement } => {
                    status.os_images.retain(|m| *m != measurement)
                }
                AuditKind::KmsMeasurementAdded { measurement } => {
                    status.kms_measurements.push(measurement)
                }
                AuditKind::KmsMeasurementRemoved { measurement } => {
                    status.kms_measurements.retain(|m| *m != measurement)
                }
                AuditKind::KmsConfigAdded { digest } => status.kms_configs.push(digest),
                AuditKind::KmsConfigRemoved { digest } => {
                    status.kms_configs.retain(|d| *d != digest)
                }
                AuditKind::KmsChipAdded { chip_id, .. } => status.kms_chips.push(chip_id),
                AuditKind::KmsChipRemoved { chip_id, .. } => {
                    status.kms_chips.retain(|c| *c != chip_id)
                }
                _ => {}
            }
        }
        Ok(status)
    }

    /// `app`'s status at the latest block; not an error when `app` is not registered.
    pub async fn app(&self, app: Address) -> Result<AppStatus, ChainError> {
        let head = self.endpoint.block(BlockNumberOrTag::Latest).await?;
        let h = head.hash;
        let registered = self
            .read(self.registry, KmsRegistry::isAppRegisteredCall { app }, h)
            .await?;
        let block = BlockRef {
            number: head.number,
            hash: head.hash,
        };
        if !registered {
            return Ok(AppStatus {
                app,
                block,
                registered,
                owner: Address::ZERO,
                pending_owner: Address::ZERO,
                enabled: false,
                allow_any_device: false,
                compose_hashes: Vec::new(),
                devices: Vec::new(),
            });
        }
        let mut status = AppStatus {
            app,
            block,
            registered,
            owner: self.read(app, AppAuth::ownerCall {}, h).await?,
            pending_owner: self.read(app, AppAuth::pendingOwnerCall {}, h).await?,
            enabled: self.read(app, AppAuth::enabledCall {}, h).await?,
            allow_any_device: self.read(app, AppAuth::allowAnyDeviceCall {}, h).await?,
            compose_hashes: Vec::new(),
            devices: Vec::new(),
        };
        for e in self
            .audit
            .events(Some(app), self.from_block, Some(head.number))
            .await?
        {
            match e.kind {
                AuditKind::ComposeHashAdded { compose_hash, .. } => {
                    status.compose_hashes.push(compose_hash)
                }
                AuditKind::ComposeHashRemoved { compose_hash, .. } => {
                    status.compose_hashes.retain(|c| *c != compose_hash)
                }
                AuditKind::DeviceAdded { device_id, .. } => status.devices.push(device_id),
                AuditKind::DeviceRemoved { device_id, .. } => {
                    status.devices.retain(|d| *d != device_id)
                }
                _ => {}
            }
        }
        Ok(status)
    }
}

#[cfg(test)]
mod standing_tests {
    use super::*;

    fn standing(min_tcb: Option<TcbVersion>, listed: bool, any: bool) -> KmsStanding {
        KmsStanding {
            block: BlockRef {
                number: 1,
                hash: B256::ZERO,
            },
            product: Product::Genoa,
            min_tcb,
            measurement_allowed: true,
            chip_listed: listed,
            any_chip_allowed: any,
        }
    }

    fn tcb(snp: u8) -> TcbVersion {
        TcbVersion {
            bootloader: 9,
            tee: 0,
            snp,
            microcode: 72,
            fmc: 0,
        }
    }

    #[test]
    fn refusals_say_what_the_registry_would_refuse() {
        let at = |t| [("reported", t), ("committed", t), ("launch", t)];
        assert!(standing(Some(tcb(23)), true, false)
            .refusals(at(tcb(23)))
            .is_empty());
        assert_eq!(
            standing(None, true, false).refusals(at(tcb(23))),
            ["no minimum tcb for product (Genoa)"]
        );
        assert_eq!(
            standing(Some(tcb(23)), false, false).refusals(at(tcb(23))),
            ["kms chip not allowed"]
        );
        assert!(standing(Some(tcb(23)), false, true)
            .refusals(at(tcb(23)))
            .is_empty());
        let low = standing(Some(tcb(23)), true, false).refusals([
            ("reported", tcb(23)),
            ("committed", tcb(22)),
            ("launch", tcb(23)),
        ]);
        assert_eq!(low.len(), 1);
        assert!(
            low[0].starts_with("tcb below minimum: committed TCB"),
            "{low:?}"
        );
    }
}
