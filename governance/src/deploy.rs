//! Deploys a registry: the `KmsRegistry` implementation (whose constructor deploys the AppAuth
//! implementation) and the `ERC1967Proxy` that is the registry everyone uses, initialized with
//! its owner in the same transaction so nobody can front-run `initialize`.

use crate::owner::{Progress, Sender};
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, B256};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolConstructor};
use serde::{Deserialize, Serialize};
use snpkms_chain_client::bindings::{ERC1967Proxy, KmsRegistry};
use snpkms_chain_client::ChainError;
use std::path::Path;

/// Where a registry was deployed. Written as JSON by `snpkms gov deploy --out`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// EIP-155 chain id of the chain deployed to.
    pub chain_id: u64,
    /// The proxy: the address of the registry for every other purpose.
    pub registry: Address,
    /// The `KmsRegistry` implementation the proxy delegates to (at deployment; an upgrade
    /// changes it).
    pub implementation: Address,
    /// The `AppAuth` implementation that `registerApp` clones, deployed by the implementation's
    /// constructor.
    pub app_auth_implementation: Address,
    /// The registry owner the proxy was initialized with.
    pub owner: Address,
    /// The account that sent the deployment transactions (it owns nothing unless it is also
    /// `owner`).
    pub deployer: Address,
    /// Block of the proxy deployment: where an audit of this registry can start.
    pub block: u64,
    /// Hash of the transaction that deployed the implementation.
    pub implementation_tx: B256,
    /// Hash of the transaction that deployed and initialized the proxy.
    pub proxy_tx: B256,
}

impl Deployment {
    /// Pretty-printed JSON, the format [`Deployment::from_json`] reads.
    pub fn to_json(&self) -> String {
        // Serialising plain addresses and numbers cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses the JSON of [`Deployment::to_json`]; [`ChainError::Config`] if it is not one.
    pub fn from_json(text: &str) -> Result<Deployment, ChainError> {
        serde_json::from_str(text)
            .map_err(|e| ChainError::Config(format!("not a deployment JSON: {e}")))
    }

    /// Reads a deployment JSON file (as written by `snpkms gov deploy --out`); errors name the
    /// path.
    pub fn read(path: &Path) -> Result<Deployment, ChainError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ChainError::Config(format!("cannot read {}: {e}", path.display())))?;
        Self::from_json(&text).map_err(|e| ChainError::Config(format!("{}: {e}", path.display())))
    }
}

/// Deploys implementation + proxy from `signer`, with `owner` as the registry owner.
pub async fn deploy_registry(
    rpc_url: &str,
    signer: PrivateKeySigner,
    owner: Address,
) -> Result<Deployment, ChainError> {
    deploy_registry_with_progress(rpc_url, signer, owner, |_| {}).await
}

/// [`deploy_registry`], reporting progress (for the CLI).
pub async fn deploy_registry_with_progress(
    rpc_url: &str,
    signer: PrivateKeySigner,
    owner: Address,
    progress: impl Fn(&Progress) + Send + Sync + 'static,
) -> Result<Deployment, ChainError> {
    if owner == Address::ZERO {
        return Err(ChainError::Config(
            "the registry owner must not be the zero address".into(),
        ));
    }
    let deployer = signer.address();
    let sender = Sender::new(rpc_url, signer)?.with_progress(progress);
    let chain_id = sender.chain_id().await?;

    let imp = sender
        .send(
            TransactionRequest::default().with_deploy_code(KmsRegistry::BYTECODE.clone()),
            "deploy KmsRegistry implementation",
        )
        .await?;
    let implementation = created(&imp, "KmsRegistry implementation")?;

    let init = KmsRegistry::initializeCall {
        initialOwner: owner,
    }
    .abi_encode();
    let args = ERC1967Proxy::constructorCall {
        implementation,
        _data: init.into(),
    }
    .abi_encode();
    let mut code = ERC1967Proxy::BYTECODE.to_vec();
    code.extend_from_slice(&args);
    let proxy = sender
        .send(
            TransactionRequest::default().with_deploy_code(Bytes::from(code)),
            "deploy ERC1967Proxy",
        )
        .await?;
    let registry = created(&proxy, "ERC1967Proxy")?;

    let raw = sender
        .call(
            implementation,
            KmsRegistry::appAuthImplementationCall {}
                .abi_encode()
                .into(),
        )
        .await?;
    let app_auth_implementation = KmsRegistry::appAuthImplementationCall::abi_decode_returns(&raw)
        .map_err(|e| ChainError::BadResponse {
            url: sender.url().to_string(),
            method: "eth_call",
            detail: format!("appAuthImplementation(): {e}"),
        })?;

    Ok(Deployment {
        chain_id,
        registry,
        implementation,
        app_auth_implementation,
        owner,
        deployer,
        block: proxy.block_number.unwrap_or_default(),
        implementation_tx: imp.transaction_hash,
        proxy_tx: proxy.transaction_hash,
    })
}

fn created(r: &TransactionReceipt, what: &str) -> Result<Address, ChainError> {
    r.contract_address.ok_or_else(|| {
        ChainError::Contract(format!(
            "deploying {what}: receipt {} has no contract address",
            r.transaction_hash
        ))
    })
}
