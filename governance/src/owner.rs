//! Owner and governance transactions: signed, sent, waited for, and reported with the revert
//! reason decoded when the contract refuses.
//!
//! Signers come from a key file or an environment variable, never from a command-line argument
//! (which other users of the machine can read in the process list).

use alloy::eips::BlockId;
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, Bytes, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent};
use serde::Serialize;
use snpkms_chain_client::bindings::{AppAuth, KmsRegistry};
use snpkms_chain_client::map_transport_error;
use snpkms_chain_client::ChainError;
use snpkms_verifier::{Product, TcbVersion};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a mined transaction cost and where it landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TxOutcome {
    /// Hash of the mined transaction.
    pub tx_hash: B256,
    /// Number of the block it was mined in.
    pub block: u64,
    /// Gas the transaction used (units of gas, not wei).
    pub gas_used: u64,
}

/// Progress of a transaction, for a UI that wants to show it (the CLI's stderr line).
#[derive(Debug, Clone)]
pub enum Progress {
    /// The node accepted the signed transaction; reported once per transaction.
    Sent {
        /// What the transaction does: the contract function's name (e.g. `addOsImage`) or a
        /// deployment step.
        what: String,
        /// Hash of the transaction, for a block explorer.
        tx_hash: B256,
    },
    /// Still no receipt; reported after each poll that found none.
    Waiting {
        /// Hash of the transaction being waited for.
        tx_hash: B256,
        /// Time since it was sent.
        elapsed: Duration,
    },
}

type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Reads a hex private key (with or without `0x`, surrounding whitespace ignored) from a file.
pub fn signer_from_file(path: &Path) -> Result<PrivateKeySigner, ChainError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ChainError::Signer(format!("cannot read key file {}: {e}", path.display())))?;
    warn_if_readable_by_others(path);
    parse_key(&text, &format!("key file {}", path.display()))
}

/// Reads a hex private key from the environment variable `var`.
pub fn signer_from_env(var: &str) -> Result<PrivateKeySigner, ChainError> {
    let text = std::env::var(var).map_err(|_| {
        ChainError::Signer(format!(
            "environment variable {var} is not set (or not UTF-8); put the hex private key there or use a key file"
        ))
    })?;
    parse_key(&text, &format!("environment variable {var}"))
}

/// Never echoes the input: it is (nearly) a private key.
fn parse_key(text: &str, source: &str) -> Result<PrivateKeySigner, ChainError> {
    let t = text.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    if t.len() != 64 {
        return Err(ChainError::Signer(format!(
            "{source} does not hold a private key: expected 64 hex digits, found {} characters",
            t.len()
        )));
    }
    let bytes = B256::from_str(t).map_err(|_| {
        ChainError::Signer(format!("{source} does not hold a private key: not hex"))
    })?;
    PrivateKeySigner::from_bytes(&bytes).map_err(|_| {
        ChainError::Signer(format!(
            "{source} does not hold a valid secp256k1 private key (zero or above the curve order)"
        ))
    })
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "key file is readable by other users; chmod 600 it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

/// Sends transactions from one signer and waits for their receipts.
#[derive(Clone)]
pub(crate) struct Sender {
    provider: DynProvider,
    url: String,
    endpoint: snpkms_chain_client::RpcEndpoint,
    from: Address,
    receipt_timeout: Duration,
    request_timeout: Duration,
    receipt_poll: Duration,
    progress: Option<ProgressFn>,
}

impl Sender {
    /// The endpoint's label for errors: without the path or query, where API keys live.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn new(rpc_url: &str, signer: PrivateKeySigner) -> Result<Sender, ChainError> {
        let endpoint = snpkms_chain_client::RpcEndpoint::new(rpc_url)?;
        let from = signer.address();
        let request_timeout = Duration::from_secs(30);
        // The nonce is read from the chain for every transaction: a cached count would also
        // count a call refused at gas estimation (never sent), and the gap would keep every
        // later transaction of this owner from being mined.
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(EthereumWallet::from(signer))
            .connect_client(endpoint.rpc_client()?)
            .erased();
        Ok(Sender {
            provider,
            url: endpoint.label(),
            endpoint,
            from,
            receipt_timeout: Duration::from_secs(120),
            request_timeout,
            receipt_poll: Duration::from_millis(500),
            progress: None,
        })
    }

    pub(crate) fn with_progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Sender {
        self.progress = Some(Arc::new(f));
        self
    }

    fn report(&self, p: Progress) {
        if let Some(f) = &self.progress {
            f(&p);
        }
    }

    pub(crate) async fn chain_id(&self) -> Result<u64, ChainError> {
        self.timed("eth_chainId", self.provider.get_chain_id())
            .await
    }

    async fn timed<T>(
        &self,
        method: &'static str,
        fut: impl std::future::IntoFuture<Output = Result<T, alloy::transports::TransportError>>,
    ) -> Result<T, ChainError> {
        match tokio::time::timeout(self.request_timeout, fut).await {
            Ok(r) => r.map_err(|e| map_transport_error(&self.endpoint, method, e)),
            Err(_) => Err(ChainError::Timeout {
                url: self.url.clone(),
                method,
                timeout_ms: self.request_timeout.as_millis() as u64,
                attempts: 1,
            }),
        }
    }

    /// Read-only call at the latest block, for values a transaction needs (like a proxy's
    /// implementation). Authorization reads go through [`snpkms_chain_client::ChainClient`] instead.
    pub(crate) async fn call(&self, to: Address, data: Bytes) -> Result<Bytes, ChainError> {
        let tx = TransactionRequest::default().with_to(to).with_input(data);
        self.timed("eth_call", self.provider.call(tx)).await
    }

    /// Signs and sends `tx`, then waits for the receipt. The node's gas estimation runs the call
    /// first, so a refused call fails here with the contract's reason and costs nothing.
    pub(crate) async fn send(
        &self,
        tx: TransactionRequest,
        what: &str,
    ) -> Result<TransactionReceipt, ChainError> {
        let tx = tx.with_from(self.from);
        let pending = self
            .timed(
                "eth_sendRawTransaction",
                self.provider.send_transaction(tx.clone()),
            )
            .await
            .map_err(|e| match e {
                ChainError::Contract(reason) => ChainError::Contract(format!("{what}: {reason}")),
                other => other,
            })?;
        let tx_hash = *pending.tx_hash();
        tracing::info!(%tx_hash, what, "transaction sent");
        self.report(Progress::Sent {
            what: what.to_string(),
            tx_hash,
        });
        let started = Instant::now();
        // Short first waits: a dev chain mines at once, a public one in seconds.
        let mut wait = Duration::from_millis(10);
        let receipt = loop {
            let r = self
                .timed(
                    "eth_getTransactionReceipt",
                    self.provider.get_transaction_receipt(tx_hash),
                )
                .await;
            match r {
                Ok(Some(r)) => break r,
                Ok(None) => {}
                // A node that drops a request while we wait is not a failed transaction.
                Err(ChainError::Timeout { .. } | ChainError::Unreachable { .. }) => {}
                Err(e) => return Err(e),
            }
            if started.elapsed() > self.receipt_timeout {
                return Err(ChainError::ReceiptTimeout {
                    tx_hash: tx_hash.to_string(),
                    waited_secs: started.elapsed().as_secs(),
                });
            }
            self.report(Progress::Waiting {
                tx_hash,
                elapsed: started.elapsed(),
            });
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(self.receipt_poll);
        };
        if !receipt.status() {
            return Err(ChainError::Contract(format!(
                "{what}: transaction {tx_hash} reverted in block {}: {}",
                receipt.block_number.unwrap_or_default(),
                self.replay_reason(&tx, &receipt).await
            )));
        }
        Ok(receipt)
    }

    /// Why a mined transaction reverted: replay it on the state before its block. (Gas
    /// estimation normally catches reverts before sending; this is for the rare race.)
    async fn replay_reason(&self, tx: &TransactionRequest, receipt: &TransactionReceipt) -> String {
        let Some(block) = receipt.block_number else {
            return "unknown reason".into();
        };
        let mut replay = tx.clone();
        replay.gas = None;
        let result = self
            .timed(
                "eth_call",
                self.provider
                    .call(replay)
                    .block(BlockId::number(block.saturating_sub(1))),
            )
            .await;
        match result {
            Err(ChainError::Contract(reason)) => reason,
            Err(e) => format!("unknown reason (replay failed: {e})"),
            Ok(_) => {
                "unknown reason (the call succeeds when replayed on the previous block)".into()
            }
        }
    }
}

fn outcome(r: &TransactionReceipt) -> TxOutcome {
    TxOutcome {
        tx_hash: r.transaction_hash,
        block: r.block_number.unwrap_or_default(),
        gas_used: r.gas_used,
    }
}

/// Transactions on a registry and its apps, signed by one key. Which calls succeed depends on
/// what that key owns: governance calls need the registry owner, app calls the app owner;
/// anyone may register an app.
#[derive(Clone)]
pub struct Owner {
    sender: Sender,
    registry: Address,
}

impl std::fmt::Debug for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owner")
            .field("address", &self.sender.from)
            .field("registry", &self.registry)
            .field("rpc_url", &self.sender.url)
            .finish()
    }
}

impl Owner {
    /// No network access until the first transaction.
    pub fn new(
        rpc_url: &str,
        signer: PrivateKeySigner,
        registry: Address,
    ) -> Result<Owner, ChainError> {
        Ok(Owner {
            sender: Sender::new(rpc_url, signer)?,
            registry,
        })
    }

    /// How long to wait for a receipt (default 120 s).
    pub fn with_receipt_timeout(mut self, timeout: Duration) -> Owner {
        self.sender.receipt_timeout = timeout;
        self
    }

    /// Called when a transaction is sent and while its receipt is awaited.
    pub fn with_progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Owner {
        self.sender = self.sender.with_progress(f);
        self
    }

    /// The signer's address.
    pub fn address(&self) -> Address {
        self.sender.from
    }

    /// The registry (proxy) address this owner sends to.
    pub fn registry(&self) -> Address {
        self.registry
    }

    async fn registry_tx<C: SolCall>(&self, call: C) -> Result<TxOutcome, ChainError> {
        self.tx(self.registry, call).await
    }

    async fn tx<C: SolCall>(&self, to: Address, call: C) -> Result<TxOutcome, ChainError> {
        let tx = TransactionRequest::default()
            .with_to(to)
            .with_input(call.abi_encode());
        let what = C::SIGNATURE.split('(').next().unwrap_or(C::SIGNATURE);
        Ok(outcome(&self.sender.send(tx, what).await?))
    }

    // ---- governance (registry owner) ----

    /// Publishes the KMS root signing address and TLS public key.
    pub async fn set_kms_info(
        &self,
        root_signing_address: Address,
        tls_public_key: &[u8],
    ) -> Result<TxOutcome, ChainError> {
        self.registry_tx(KmsRegistry::setKmsInfoCall {
            rootSigningAddress: root_signing_address,
            tlsPublicKey: Bytes::copy_from_slice(tls_public_key),
        })
        .await
    }

    /// Records a threshold share set (what the nodes' key generation made, checked with
    /// `snpkms_kms_node::check_keygen` first): the threshold, the group key and every node's
    /// index, verifying share and signing address. The first call switches the deployment to
    /// the threshold mode; a later one is a re-share and must keep the group key.
    pub async fn set_threshold_group(
        &self,
        threshold: u16,
        group_key: &[u8],
        nodes: &[(u16, Vec<u8>, Address)],
    ) -> Result<TxOutcome, ChainError> {
        self.registry_tx(KmsRegistry::setThresholdGroupCall {
            threshold_: threshold,
            groupKey: Bytes::copy_from_slice(group_key),
            nodes: nodes
                .iter()
                .map(|(index, share, signer)| KmsRegistry::ThresholdNode {
                    index: *index,
                    verifyingShare: Bytes::copy_from_slice(share),
                    signer: *signer,
                })
                .collect(),
        })
        .await
    }

    /// Increments the key epoch. Nodes then derive every app's keys for the new epoch (guests
    /// may still ask for earlier epochs to migrate data); the root signing key is unchanged.
    pub async fn bump_key_epoch(&self) -> Result<TxOutcome, ChainError> {
        self.registry_tx(KmsRegistry::bumpKeyEpochCall {}).await
    }

    /// Allows an app OS image (its 48-byte launch measurement).
    pub async fn add_os_image(&self, measurement: &[u8]) -> Result<TxOutcome, ChainError> {
        self.registry_tx(KmsRegistry::addOsImageCall {
            measurement: Bytes::copy_from_slice(measurement),
        })
        .await
    }

    /// Disallows an app OS image; the contract refuses one that is not allowed (`NotPresent`).
    pub async fn remove_os_image(&self, measurement: &[u8]) -> Result<TxOutcome, ChainError> {
        self.registry_tx(KmsRegistry::removeOsImageCall {
            measurement: Bytes::copy_from_slice(measurement),
        })
        .await
    }

    /// Allows a KMS node image (its 48-byte launch measurement).
    pub async fn add_kms_measurement(&self, measurement: &[u8]) -> Result<TxOutcome, ChainError> {
        self.registry_tx(KmsRegistry::addKmsMeasurementCall {
            measurement: Bytes::copy_from_slice(measurement),
        })
        .await
    }

    /// Disallows a KMS node image; the contract refuses one that is not allowed (`NotPresent`).
    pub async fn remove_kms_measurement(
        &self,
        measurement: &[u8],
    ) -> Result<TxOutcome, ChainError> {
        self.registry_tx(KmsRegistry::removeKmsMeasurementCall {
            measurement: Bytes::copy_from_slice(measurement),
        })
        .await
    }

    /// Allows KMS nodes whose security configuration has this digest
    /// (`snpkms node config-digest`).
    pub async fn add_kms_config(&self, digest: B256) -> Result<TxOutcome, ChainError> {
        self.registry_tx(KmsRegistry::addKmsConfigCall { digest })
            .await
    }

    /// Disallows a KMS security-configuration digest: nodes sealed under it stop serving.
    pub async fn remove_kms_config(&self, digest: B256) -> Result<TxOutcome, ChainError> {
        self.registry_tx(KmsRegistry::removeKmsConfigCall { digest })
            .await
    }

    /// Lists a chip (64-byte chip id) allowed to run KMS nodes; only listed chips may, unless
    /// [`Owner::set_any_kms_chip_allowed`].
    pub async fn add_kms_chip(&self, chip_id: &[u8]) -> Result<TxOutcome, ChainError> {
        self.registry_tx(KmsRegistry::addKmsChipCall {
            chipId: Bytes::copy_from_slice(chip_id),
        })
        .await
    }

    /// Removes a chip from the KMS chip list. Removing the last one leaves no chip allowed
    /// (unless any chip is).
    pub async fn remove_kms_chip(&self, chip_id: &[u8]) -> Result<TxOutcome, ChainError> {
        self.registry_tx(KmsRegistry::removeKmsChipCall {
            chipId: Bytes::copy_from_slice(chip_id),
        })
        .await
    }

    /// Lets any chip run a KMS node (`true`: e.g. a development deployment), or only the listed
    /// chips (`false`, the default of a new registry).
    pub async fn set_any_kms_chip_allowed(&self, allowed: bool) -> Result<TxOutcome, ChainError> {
        self.registry_tx(KmsRegistry::setAnyKmsChipAllowedCall { allowed })
            .await
    }

    /// Sets the minimum TCB for `product`; reported, committed and launch TCB of a report must
    /// each be at least this, component by component; until it is set, no report of `product`
    /// is allowed (an all-zero minimum accepts any TCB). The contract refuses a non-zero `fmc`
    /// except for Turin (`FmcNotSupported`).
    pub async fn set_min_tcb(
        &self,
        product: Product,
        tcb: TcbVersion,
    ) -> Result<TxOutcome, ChainError> {
        self.registry_tx(KmsRegistry::setMinTcbCall {
            product: product.chain_id(),
            tcb: tcb.into(),
        })
        .await
    }

    // ---- anyone ----

    /// Registers an app owned by this signer; returns its address (the app id).
    pub async fn register_app(&self, salt: B256) -> Result<(Address, TxOutcome), ChainError> {
        let tx = TransactionRequest::default()
            .with_to(self.registry)
            .with_input(KmsRegistry::registerAppCall { salt }.abi_encode());
        let receipt = self.sender.send(tx, "registerApp").await?;
        let app = receipt
            .inner
            .logs()
            .iter()
            .filter(|l| l.address() == self.registry)
            .find_map(|l| KmsRegistry::AppRegistered::decode_log(&l.inner).ok())
            .map(|e| e.app)
            .ok_or_else(|| ChainError::BadResponse {
                url: self.sender.url.clone(),
                method: "eth_getTransactionReceipt",
                detail: "registerApp receipt has no AppRegistered event".into(),
            })?;
        Ok((app, outcome(&receipt)))
    }

    // ---- app owner ----

    /// Allows `app` to boot with this compose hash (app owner only).
    pub async fn add_compose_hash(
        &self,
        app: Address,
        hash: B256,
    ) -> Result<TxOutcome, ChainError> {
        self.tx(app, AppAuth::addComposeHashCall { composeHash: hash })
            .await
    }

    /// Disallows a compose hash of `app` (app owner only).
    pub async fn remove_compose_hash(
        &self,
        app: Address,
        hash: B256,
    ) -> Result<TxOutcome, ChainError> {
        self.tx(app, AppAuth::removeComposeHashCall { composeHash: hash })
            .await
    }

    /// Allows a device (`keccak256(chip_id)`, see [`device_id`]).
    pub async fn add_device(&self, app: Address, device_id: B256) -> Result<TxOutcome, ChainError> {
        self.tx(
            app,
            AppAuth::addDeviceCall {
                deviceId: device_id,
            },
        )
        .await
    }

    /// Disallows a device of `app` (app owner only).
    pub async fn remove_device(
        &self,
        app: Address,
        device_id: B256,
    ) -> Result<TxOutcome, ChainError> {
        self.tx(
            app,
            AppAuth::removeDeviceCall {
                deviceId: device_id,
            },
        )
        .await
    }

    /// When `allowed`, `app` may boot on any chip and its device list is ignored (app owner
    /// only).
    pub async fn set_allow_any_device(
        &self,
        app: Address,
        allowed: bool,
    ) -> Result<TxOutcome, ChainError> {
        self.tx(app, AppAuth::setAllowAnyDeviceCall { allowed })
            .await
    }

    /// Enables `app` again after [`Owner::disable_app`] (app owner only); a new app starts enabled.
    pub async fn enable_app(&self, app: Address) -> Result<TxOutcome, ChainError> {
        self.tx(app, AppAuth::enableCall {}).await
    }

    /// Disables `app`: no guest of it gets keys until it is enabled again; its lists are kept
    /// (app owner only).
    pub async fn disable_app(&self, app: Address) -> Result<TxOutcome, ChainError> {
        self.tx(app, AppAuth::disableCall {}).await
    }
}

/// The registry's device id of a chip: `keccak256(chip_id)`.
pub fn device_id(chip_id: &[u8]) -> B256 {
    alloy::primitives::keccak256(chip_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_ONE: &str = "0x0000000000000000000000000000000000000000000000000000000000000001";

    #[test]
    fn keys_parse_with_or_without_prefix_and_whitespace() {
        let want = Address::from_str("0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf").unwrap();
        for text in [KEY_ONE, &format!("  {KEY_ONE}\n"), &KEY_ONE[2..]] {
            assert_eq!(parse_key(text, "test").unwrap().address(), want);
        }
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        let secret = "0x00000000000000000000000000000000000000000000000000000000000001";
        for bad in [
            secret,
            "0xzz00000000000000000000000000000000000000000000000000000000000001",
            "0x0000000000000000000000000000000000000000000000000000000000000000",
            "0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        ] {
            let err = parse_key(bad, "key file k").unwrap_err().to_string();
            assert!(err.contains("key file k"), "{err}");
            assert!(!err.contains(&bad[2..20]), "echoes the key: {err}");
        }
    }

    #[test]
    fn key_sources() {
        let dir = std::env::temp_dir().join(format!("snpkms-key-{}", std::process::id()));
        std::fs::write(&dir, format!("{KEY_ONE}\n")).unwrap();
        assert!(signer_from_file(&dir).is_ok());
        std::fs::remove_file(&dir).unwrap();
        let err = signer_from_file(&dir).unwrap_err().to_string();
        assert!(err.contains("cannot read key file"), "{err}");
        let err = signer_from_env("SNPKMS_TEST_SURELY_UNSET_VAR")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SNPKMS_TEST_SURELY_UNSET_VAR is not set"),
            "{err}"
        );
    }
}
