//! The guest side of the threshold mode: each node's GetAppKeyShare answer opened with the
//! request's ephemeral key, its partial checked against the node's verifying share in the share
//! set the guest read from the chain, and t good partials combined into the app's keys. A node
//! that is down, refuses, or answers with a partial whose proof fails is skipped and named; with
//! fewer than t good partials nothing is derived.

use snpkms_api::pb;
use snpkms_api::seal::{self, EphemeralKeyPair, Sealed};
use snpkms_threshold::group::CompressedPoint;
use snpkms_threshold::{GroupKeys, Partial, ThresholdError, VerifiedPartial};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// The registry's share set as the guest trusts it: read from the chain (never from a node),
/// and consistent (the verifying shares interpolate to the group key).
pub struct ShareSet {
    share_epoch: u32,
    group: GroupKeys,
    signers: BTreeMap<u16, [u8; 20]>,
}

impl ShareSet {
    /// The set `thresholdGroup()` returned: share epoch, threshold, group key and per node
    /// (index, verifying share, signer). Refused if it is not one polynomial's.
    pub fn new(
        share_epoch: u32,
        threshold: u16,
        group_key: &[u8],
        nodes: &[(u16, Vec<u8>, [u8; 20])],
    ) -> Result<ShareSet, ThresholdError> {
        let point = |bytes: &[u8], node| -> Result<CompressedPoint, ThresholdError> {
            bytes.try_into().map_err(|_| ThresholdError::BadPoint {
                node,
                what: "the recorded point",
            })
        };
        let shares = nodes
            .iter()
            .map(|(index, share, _)| Ok((*index, point(share, *index)?)))
            .collect::<Result<Vec<_>, ThresholdError>>()?;
        Ok(ShareSet {
            share_epoch,
            group: GroupKeys::new(threshold, &point(group_key, 0)?, &shares)?,
            signers: nodes.iter().map(|(i, _, s)| (*i, *s)).collect(),
        })
    }

    /// The group's public keys.
    pub fn group(&self) -> &GroupKeys {
        &self.group
    }
}

/// One node's answer to one GetAppKeyShare request, as the guest collected it.
pub struct NodeAnswer {
    /// How the guest names the node (its URL).
    pub node: String,
    /// The nonce the request was made with.
    pub nonce: Vec<u8>,
    /// The answer, or why there was none (down, refused: the status's code and message).
    pub result: Result<pb::GetAppKeyShareResponse, String>,
}

/// One node's answer to one SignAppKey request.
pub struct SignatureAnswer {
    /// How the guest names the node (its URL).
    pub node: String,
    /// The answer, or why there was none.
    pub result: Result<pb::SignAppKeyResponse, String>,
}

/// One node's signature over the app key digest, checked against the share set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSignature {
    /// The node's index in the share set.
    pub node_index: u16,
    /// 65 bytes `r || s || v`, for `verifyAppKeyThreshold`.
    pub signature: [u8; 65],
}

/// The threshold KMS signature: t signatures of distinct nodes of the set.
#[derive(Debug, Clone)]
pub struct ThresholdSignature {
    /// In node index order, exactly t of them.
    pub signatures: Vec<NodeSignature>,
    /// The nodes whose answers were not used, and why.
    pub skipped: Vec<Skipped>,
}

/// A node whose answer was not used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The node as the guest named it.
    pub node: String,
    /// Why its answer was not used.
    pub why: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.node, self.why)
    }
}

/// Why no keys were derived.
#[derive(Debug, thiserror::Error)]
pub enum ThresholdClientError {
    /// Fewer than t nodes gave a good partial for one epoch; each other node is named.
    #[error("{got} valid partial(s) for one epoch, {need} needed; skipped: {}", list(.skipped))]
    NotEnough {
        /// Good partials for the epoch with the most.
        got: usize,
        /// The threshold.
        need: u16,
        /// The nodes not used and why.
        skipped: Vec<Skipped>,
    },
    /// Fewer than t nodes vouched for the app signing address; each other node is named.
    #[error("{got} valid KMS signature(s) over the app signing address, {need} needed; skipped: {}", list(.skipped))]
    NotEnoughSignatures {
        /// Good signatures of distinct nodes.
        got: usize,
        /// The threshold.
        need: u16,
        /// The nodes not used and why.
        skipped: Vec<Skipped>,
    },
    /// The combination failed (not expected after every partial verified).
    #[error("combining the partials failed: {0}")]
    Combine(#[from] ThresholdError),
}

fn list(skipped: &[Skipped]) -> String {
    if skipped.is_empty() {
        return "none".into();
    }
    skipped
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// An app's keys made from t nodes' partials.
pub struct ThresholdGrant {
    /// 32-byte disk key.
    pub disk_key: Zeroizing<[u8; 32]>,
    /// X25519 secret key for environment secrets.
    pub env_secret_key: Zeroizing<[u8; 32]>,
    /// secp256k1 signing key (big-endian scalar).
    pub signing_key: Zeroizing<[u8; 32]>,
    /// Its Ethereum address.
    pub app_signing_address: [u8; 20],
    /// The key epoch.
    pub key_epoch: u32,
    /// The share epoch of the partials.
    pub share_epoch: u32,
    /// The nodes whose partials were combined (indices).
    pub used: Vec<u16>,
    /// The nodes (as the guest named them) that gave a good partial for the key epoch: the
    /// ones to ask for the KMS signature ([`collect_signatures`]).
    pub answered: Vec<String>,
    /// The nodes whose answers were not used, and why.
    pub skipped: Vec<Skipped>,
}

/// Opens one node's answer and checks its partial. The proof against the verifying share the
/// chain lists for the partial's index is what makes it trustworthy; the share epoch, key
/// epoch, index and signer the answer names are consistency checks that turn a misconfigured
/// node's answer into a precise reason (they are the node's words: nothing signs them, and
/// HPKE's base mode does not authenticate the sender). `Err` says what was wrong, for
/// [`Skipped`].
pub fn open_partial(
    set: &ShareSet,
    ephemeral: &EphemeralKeyPair,
    nonce: &[u8],
    app_id: [u8; 20],
    compose_hash: [u8; 32],
    requested_epoch: Option<u32>,
    response: pb::GetAppKeyShareResponse,
) -> Result<VerifiedPartial, String> {
    if response.share_epoch != set.share_epoch {
        return Err(format!(
            "answered from share epoch {}, the registry's is {}",
            response.share_epoch, set.share_epoch
        ));
    }
    if let Some(requested) = requested_epoch {
        if response.key_epoch != requested {
            return Err(format!(
                "answered for key epoch {}, asked for {requested}",
                response.key_epoch
            ));
        }
    }
    let index = u16::try_from(response.node_index)
        .ok()
        .filter(|i| set.signers.contains_key(i))
        .ok_or_else(|| format!("claims node index {}, not in the set", response.node_index))?;
    if response.node_signing_address != set.signers[&index] {
        // Only the first 20 bytes are shown: the field is the node's to fill.
        let claimed = &response.node_signing_address[..response.node_signing_address.len().min(20)];
        return Err(format!(
            "claims to be node {index} but names signer 0x{} ({} bytes), the registry lists 0x{}",
            hex::encode(claimed),
            response.node_signing_address.len(),
            hex::encode(set.signers[&index])
        ));
    }
    let aad = seal::app_key_share_aad(
        &app_id,
        &compose_hash,
        response.key_epoch,
        nonce,
        response.share_epoch,
        index,
    );
    let bytes = Zeroizing::new(
        ephemeral
            .open(
                seal::APP_KEY_SHARE_INFO,
                &aad,
                &Sealed {
                    encapsulated_key: response.encapsulated_key,
                    ciphertext: response.sealed_partial,
                },
            )
            .map_err(|e| format!("the partial did not open with our key: {e}"))?,
    );
    let partial = Partial::from_bytes(&bytes).map_err(|e| e.to_string())?;
    if partial.index != index {
        return Err(format!(
            "the sealed partial is node {}'s, the answer claims node {index}",
            partial.index
        ));
    }
    snpkms_threshold::verify(&set.group, &app_id, response.key_epoch, &partial)
        .map_err(|e| e.to_string())
}

/// Combines the answers: every one is opened and checked ([`open_partial`]); the newest key
/// epoch with t good partials is used; every other answer is named in
/// [`ThresholdGrant::skipped`] or in the error. Nodes say which epoch they answered for, and
/// whoever relays a request can change the epoch it asks for: a guest that must not get an
/// older epoch's keys reads `keyEpoch()` from the chain and asks for it (`requested_epoch`).
pub fn combine_answers(
    set: &ShareSet,
    ephemeral: &EphemeralKeyPair,
    app_id: [u8; 20],
    compose_hash: [u8; 32],
    requested_epoch: Option<u32>,
    answers: Vec<NodeAnswer>,
) -> Result<ThresholdGrant, ThresholdClientError> {
    let mut skipped = Vec::new();
    let mut good: BTreeMap<u32, Vec<(String, VerifiedPartial)>> = BTreeMap::new();
    for answer in answers {
        let opened = answer.result.and_then(|response| {
            let epoch = response.key_epoch;
            open_partial(
                set,
                ephemeral,
                &answer.nonce,
                app_id,
                compose_hash,
                requested_epoch,
                response,
            )
            .map(|p| (epoch, p))
        });
        match opened {
            Ok((epoch, partial)) => {
                // Per epoch: a node's good answer for another epoch (which whoever relays the
                // request can make it give) must not push out its answer for this one.
                let bucket = good.entry(epoch).or_default();
                if bucket.iter().any(|(_, p)| p.index() == partial.index()) {
                    skipped.push(Skipped {
                        node: answer.node,
                        why: format!(
                            "node {} answered already for key epoch {epoch}",
                            partial.index()
                        ),
                    });
                } else {
                    bucket.push((answer.node, partial));
                }
            }
            Err(why) => skipped.push(Skipped {
                node: answer.node,
                why,
            }),
        }
    }
    let need = set.group.threshold();
    // The newest epoch with t good partials: nodes a block behind still answer the previous
    // one, and a majority for it must not win over t answers for the current one.
    let chosen = good
        .iter()
        .rev()
        .find(|(_, partials)| partials.len() >= usize::from(need))
        .map(|(epoch, _)| *epoch);
    let Some(epoch) = chosen else {
        for (epoch, partials) in good.iter() {
            for (node, _) in partials {
                skipped.push(Skipped {
                    node: node.clone(),
                    why: format!("a good partial for key epoch {epoch}, too few for one epoch"),
                });
            }
        }
        let got = good.values().map(Vec::len).max().unwrap_or(0);
        return Err(ThresholdClientError::NotEnough { got, need, skipped });
    };
    for (other, partials) in good.iter().filter(|(e, _)| **e != epoch) {
        for (node, _) in partials {
            skipped.push(Skipped {
                node: node.clone(),
                why: format!("answered for key epoch {other}; t nodes answered for {epoch}"),
            });
        }
    }
    let partials: Vec<VerifiedPartial> = good[&epoch].iter().map(|(_, p)| p.clone()).collect();
    let answered: Vec<String> = good[&epoch].iter().map(|(n, _)| n.clone()).collect();
    let mut used: Vec<u16> = partials.iter().map(VerifiedPartial::index).collect();
    used.sort_unstable();
    used.truncate(need.into());
    let secret = snpkms_threshold::combine(&set.group, &partials)?;
    let keys = secret.app_keys();
    Ok(ThresholdGrant {
        disk_key: Zeroizing::new(*keys.disk),
        env_secret_key: Zeroizing::new(*keys.env),
        signing_key: Zeroizing::new(keys.signing.to_bytes().into()),
        app_signing_address: keys.signing_address(),
        key_epoch: epoch,
        share_epoch: set.share_epoch,
        used,
        answered,
        skipped,
    })
}

/// Checks each SignAppKey answer: the signature must recover, over the app key digest of
/// `app_id`, `app_signing_address` and `key_epoch`, to the signer the share set lists for a
/// node not counted yet (what the answer says of itself is not trusted). t of them make the
/// threshold KMS signature; the rest are named.
pub fn collect_signatures(
    set: &ShareSet,
    app_id: [u8; 20],
    app_signing_address: [u8; 20],
    key_epoch: u32,
    answers: Vec<SignatureAnswer>,
) -> Result<ThresholdSignature, ThresholdClientError> {
    let need = set.group.threshold();
    let mut skipped = Vec::new();
    let mut good: BTreeMap<u16, NodeSignature> = BTreeMap::new();
    for answer in answers {
        let checked = answer.result.and_then(|response| {
            let signature: [u8; 65] =
                response.kms_signature.as_slice().try_into().map_err(|_| {
                    format!(
                        "the signature is {} bytes, 65 expected",
                        response.kms_signature.len()
                    )
                })?;
            let signer = snpkms_api::app_key_signature::recover(
                &app_id,
                &app_signing_address,
                key_epoch,
                &signature,
            )
            .map_err(|e| format!("the signature: {e}"))?;
            let node_index = set
                .signers
                .iter()
                .find(|(_, s)| **s == signer)
                .map(|(i, _)| *i)
                .ok_or_else(|| {
                    format!(
                        "the signature is by 0x{}, no node of share epoch {} (or not over this \
                         app, address and key epoch {key_epoch})",
                        hex::encode(signer),
                        set.share_epoch
                    )
                })?;
            Ok(NodeSignature {
                node_index,
                signature,
            })
        });
        match checked {
            Ok(signature) if good.contains_key(&signature.node_index) => skipped.push(Skipped {
                node: answer.node,
                why: format!("node {} signed already", signature.node_index),
            }),
            Ok(signature) => {
                good.insert(signature.node_index, signature);
            }
            Err(why) => skipped.push(Skipped {
                node: answer.node,
                why,
            }),
        }
    }
    if good.len() < usize::from(need) {
        return Err(ThresholdClientError::NotEnoughSignatures {
            got: good.len(),
            need,
            skipped,
        });
    }
    Ok(ThresholdSignature {
        signatures: good.into_values().take(need.into()).collect(),
        skipped,
    })
}
