//! Typed errors. Each message says what went wrong and what to check; none ever contains key
//! material (signers are loaded in `owner`, and their errors name only the file or variable).

use crate::bindings::{AppAuth, ERC1967Proxy, KmsRegistry};
use crate::BlockRef;
use alloy::primitives::Address;
use alloy::sol_types::{Panic, Revert, SolError, SolInterface};

/// Everything that can stop the client from giving an answer. No variant ever means "allowed":
/// callers must treat every error as a refusal. `url` fields are endpoint labels
/// (`scheme://host:port`), never a URL with its path (API keys stay out).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// No connection to the endpoint.
    #[error("RPC endpoint {url} is unreachable ({reason}); check that the node runs and the URL is right")]
    Unreachable {
        /// The endpoint.
        url: String,
        /// The transport's account, redacted.
        reason: String,
    },

    /// The endpoint's TLS server was not the one the configuration trusts.
    #[error("RPC endpoint {url} refused by TLS: {reason}; check the URL, the endpoint's certificate and its pin (chain.rpc_urls)")]
    Tls {
        /// The endpoint.
        url: String,
        /// Unknown issuer, expired, another host name, not the pinned key, ...
        reason: String,
    },

    /// The endpoint did not answer in time, after the retries.
    #[error("RPC endpoint {url} did not answer {method} within {timeout_ms} ms ({attempts} attempt(s)); the node may be overloaded or the timeout too short")]
    Timeout {
        /// The endpoint.
        url: String,
        /// The JSON-RPC method.
        method: &'static str,
        /// The timeout of one attempt.
        timeout_ms: u64,
        /// Attempts made.
        attempts: u32,
    },

    /// The endpoint answered with an error (not a revert).
    #[error("RPC endpoint {url} answered {method} with an error: {message}")]
    Rpc {
        /// The endpoint.
        url: String,
        /// The JSON-RPC method.
        method: &'static str,
        /// Its message and code, redacted.
        message: String,
    },

    /// The endpoint's answer does not decode.
    #[error("RPC endpoint {url} sent an answer to {method} that cannot be decoded: {detail}")]
    BadResponse {
        /// The endpoint(s).
        url: String,
        /// The JSON-RPC method.
        method: &'static str,
        /// What did not decode.
        detail: String,
    },

    /// The pinned block is older than `max_staleness`.
    #[error("chain is stale: block #{block}, the one reads are pinned to ({read_at}), is {age_secs} s old, more than the allowed {max_secs} s; the RPC nodes may be out of sync, the chain halted or its finality stalled")]
    Stale {
        /// The pinned block's number.
        block: u64,
        /// How reads are pinned (`latest-3`, `safe`, `finalized`).
        read_at: String,
        /// Its age by its timestamp.
        age_secs: u64,
        /// The configured bound.
        max_secs: u64,
    },

    /// Fewer than k endpoints gave an answer.
    #[error("no quorum: {answered} of the required {needed} RPC endpoint(s) answered{}", fmt_errors(.errors))]
    NoQuorum {
        /// k.
        needed: usize,
        /// How many gave the most common answer.
        answered: usize,
        /// What the others said.
        errors: Vec<String>,
    },

    /// Different answers and none decides.
    #[error("RPC endpoints disagree at block {block}: {detail}; one of them is wrong, on a fork, or lying")]
    Disagreement {
        /// The pinned block.
        block: BlockRef,
        /// Who answered what.
        detail: String,
    },

    /// Different blocks at the pinned height and none decides.
    #[error("RPC endpoints disagree on the block at height {number}: {detail}; one of them is wrong, on a fork, or lying")]
    BlockDisagreement {
        /// The height.
        number: u64,
        /// Who has which block.
        detail: String,
    },

    /// The endpoints serve another chain than configured, or different chains.
    #[error("chain id mismatch: {detail}; all RPC URLs must serve the chain the registry is on")]
    ChainIdMismatch {
        /// Which endpoint serves which chain.
        detail: String,
    },

    /// The registry address has no code.
    #[error(
        "no contract at {address} on chain {chain_id}; check the registry address and the RPC URL"
    )]
    NoContract {
        /// The configured registry.
        address: Address,
        /// The chain the endpoints serve.
        chain_id: u64,
    },

    /// A call or transaction reverted; the decoded reason.
    #[error("contract call reverted: {0}")]
    Contract(String),

    /// A transaction was sent but no receipt came.
    #[error("transaction {tx_hash} was not mined within {waited_secs} s; it may still be pending")]
    ReceiptTimeout {
        /// The transaction.
        tx_hash: String,
        /// How long we waited.
        waited_secs: u64,
    },

    /// A signer key could not be loaded (the message names the file or variable, never the key).
    #[error("signer: {0}")]
    Signer(String),

    /// A configuration that can never work.
    #[error("invalid configuration: {0}")]
    Config(String),
}

fn fmt_errors(errors: &[String]) -> String {
    if errors.is_empty() {
        String::new()
    } else {
        format!(": {}", errors.join("; "))
    }
}

/// Turns revert data into a readable reason, using every error our contracts (and the
/// OpenZeppelin code they include) can raise, plus Solidity's `Error(string)` and `Panic(uint)`.
pub fn decode_revert(data: &[u8]) -> String {
    if data.is_empty() {
        return "reverted without a reason".into();
    }
    if let Ok(e) = KmsRegistry::KmsRegistryErrors::abi_decode(data) {
        return describe_registry_error(&e);
    }
    if let Ok(AppAuth::AppAuthErrors::ZeroRegistry(_)) = AppAuth::AppAuthErrors::abi_decode(data) {
        return "ZeroRegistry(): the app contract was initialized without a registry".into();
    }
    if let Ok(ERC1967Proxy::ERC1967ProxyErrors::ERC1967ProxyUninitialized(_)) =
        ERC1967Proxy::ERC1967ProxyErrors::abi_decode(data)
    {
        return "ERC1967ProxyUninitialized(): the proxy was deployed without initialization data"
            .into();
    }
    if let Ok(r) = Revert::abi_decode(data) {
        return format!("Error({:?})", r.reason);
    }
    if let Ok(p) = Panic::abi_decode(data) {
        return format!("Panic({})", p.code);
    }
    format!("unknown error data 0x{}", hex::encode(data))
}

fn describe_registry_error(e: &KmsRegistry::KmsRegistryErrors) -> String {
    use KmsRegistry::KmsRegistryErrors as E;
    match e {
        E::OwnableUnauthorizedAccount(x) => format!(
            "OwnableUnauthorizedAccount({}): the signer is not the owner of this contract",
            x.account
        ),
        E::OwnableInvalidOwner(x) => format!("OwnableInvalidOwner({}): not a valid owner", x.owner),
        E::AlreadyPresent(_) => "AlreadyPresent(): the entry is already there".into(),
        E::NotPresent(_) => "NotPresent(): there is no such entry to remove".into(),
        E::BadMeasurementLength(x) => format!(
            "BadMeasurementLength({}): a measurement must be 48 bytes",
            x.length
        ),
        E::BadChipIdLength(x) => {
            format!("BadChipIdLength({}): a chip id must be 64 bytes", x.length)
        }
        E::UnknownProduct(x) => format!(
            "UnknownProduct({}): products are 0 (Milan), 1 (Genoa), 2 (Turin)",
            x.product
        ),
        E::FmcNotSupported(x) => format!(
            "FmcNotSupported({}): only Turin has an fmc TCB component; set it to 0",
            x.product
        ),
        E::BadThreshold(x) => format!(
            "BadThreshold({}, {}): a threshold must be 1 to the number of nodes",
            x.threshold, x.nodes
        ),
        E::BadPointEncoding(x) => format!(
            "BadPointEncoding({}): keys and verifying shares are 33-byte compressed secp256k1 points",
            x.length
        ),
        E::NodeIndicesNotIncreasing(x) => format!(
            "NodeIndicesNotIncreasing({}): node indices must increase strictly from 1",
            x.index
        ),
        E::BadNodeSigner(x) => format!(
            "BadNodeSigner({}): node signers must be non-zero and distinct",
            x.signer
        ),
        E::TooManyNodes(x) => format!(
            "TooManyNodes({}): a share set has at most 255 nodes",
            x.nodes
        ),
        E::GroupKeyChanged(_) => {
            "GroupKeyChanged(): a re-share must keep the group key (app keys depend on it)".into()
        }
        E::UpgradesAreDisabled(_) => {
            "UpgradesAreDisabled(): upgrades of this registry were disabled for good".into()
        }
        E::InvalidInitialization(_) => "InvalidInitialization(): already initialized".into(),
        E::NotInitializing(_) => "NotInitializing()".into(),
        E::UUPSUnauthorizedCallContext(_) => "UUPSUnauthorizedCallContext()".into(),
        E::UUPSUnsupportedProxiableUUID(x) => format!("UUPSUnsupportedProxiableUUID({})", x.slot),
        E::ERC1967InvalidImplementation(x) => format!(
            "ERC1967InvalidImplementation({}): not a contract",
            x.implementation
        ),
        E::ERC1967NonPayable(_) => "ERC1967NonPayable(): this call takes no value".into(),
        E::AddressEmptyCode(x) => format!("AddressEmptyCode({}): no contract there", x.target),
        E::FailedCall(_) => "FailedCall()".into(),
        E::FailedDeployment(_) => "FailedDeployment()".into(),
        E::InsufficientBalance(x) => {
            format!(
                "InsufficientBalance(balance {}, needed {})",
                x.balance, x.needed
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::U256;

    #[test]
    fn custom_errors_are_named_with_their_arguments() {
        let who = Address::repeat_byte(0xab);
        let data = KmsRegistry::OwnableUnauthorizedAccount { account: who }.abi_encode();
        let msg = decode_revert(&data);
        assert!(
            msg.starts_with(&format!("OwnableUnauthorizedAccount({who})")),
            "{msg}"
        );
        let data = KmsRegistry::BadMeasurementLength {
            length: U256::from(47),
        }
        .abi_encode();
        assert!(decode_revert(&data).starts_with("BadMeasurementLength(47)"));
        let data = KmsRegistry::FmcNotSupported { product: 1 }.abi_encode();
        assert!(decode_revert(&data).starts_with("FmcNotSupported(1)"));
        assert!(decode_revert(&KmsRegistry::AlreadyPresent {}.abi_encode())
            .starts_with("AlreadyPresent()"));
        assert!(decode_revert(&AppAuth::ZeroRegistry {}.abi_encode()).starts_with("ZeroRegistry()"));
        let data = KmsRegistry::BadThreshold {
            threshold: U256::from(6),
            nodes: U256::from(5),
        }
        .abi_encode();
        assert!(decode_revert(&data).starts_with("BadThreshold(6, 5)"));
        assert!(decode_revert(&KmsRegistry::GroupKeyChanged {}.abi_encode())
            .starts_with("GroupKeyChanged()"));
    }

    #[test]
    fn standard_and_unknown_reverts() {
        let data = Revert::from("nope").abi_encode();
        assert_eq!(decode_revert(&data), "Error(\"nope\")");
        let data = Panic::from(0x11).abi_encode();
        assert_eq!(decode_revert(&data), "Panic(17)");
        assert_eq!(decode_revert(&[]), "reverted without a reason");
        assert_eq!(
            decode_revert(&[1, 2, 3, 4, 5]),
            "unknown error data 0x0102030405"
        );
    }
}
