//! What secret a node holds, which decides its mode: the whole root secret (the replicated-root
//! mode) or one share of a threshold group (the threshold mode). A node holds one or the other,
//! never both: a threshold node that also held the root would make the threshold pointless.

use crate::keys::RootSecret;
use hkdf::Hkdf;
use k256::ecdsa::SigningKey;
use sha2::Sha256;
use snpkms_api::app_key_signature::address_of;
use snpkms_api::app_keys::secp256k1_key;
use snpkms_threshold::group::CompressedPoint;
use snpkms_threshold::shares::verifying_share_bytes;
use snpkms_threshold::KeyShare;

/// HKDF salt of a threshold node's signing key, derived from its share (info "node-signing").
/// A new share (a re-share) gives a new signing key, which the new share set names.
pub const NODE_SIGNING_SALT: &[u8] = b"snpkms/v2/node";

/// A threshold node's share and the signing key that comes with it.
pub struct NodeShare {
    share: KeyShare,
    signing_key: SigningKey,
    signing_address: [u8; 20],
    verifying_share: CompressedPoint,
}

impl std::fmt::Debug for NodeShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeShare")
            .field("index", &self.share.index())
            .field("signing_address", &hex::encode(self.signing_address))
            .finish_non_exhaustive()
    }
}

impl NodeShare {
    /// The node's share (from its key generation, or unsealed).
    pub fn new(share: KeyShare) -> NodeShare {
        let bytes = share.to_bytes();
        let signing_key = secp256k1_key(
            &Hkdf::<Sha256>::new(Some(NODE_SIGNING_SALT), bytes.as_ref()),
            b"node-signing",
        );
        NodeShare {
            signing_address: address_of(signing_key.verifying_key()),
            verifying_share: verifying_share_bytes(&share),
            share,
            signing_key,
        }
    }

    /// The node's index in the group.
    pub fn index(&self) -> u16 {
        self.share.index()
    }

    /// The share.
    pub fn share(&self) -> &KeyShare {
        &self.share
    }

    /// `s_i·G`, compressed: what the registry must record for this index.
    pub fn verifying_share(&self) -> &CompressedPoint {
        &self.verifying_share
    }

    /// The address the registry must list as this node's signer.
    pub fn signing_address(&self) -> [u8; 20] {
        self.signing_address
    }

    /// The node's signing key (audit heads; app-key signatures in the threshold mode).
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }
}

/// The secret a node serves from.
pub enum Custody {
    /// The replicated root secret: the node derives app keys itself.
    Root(RootSecret),
    /// One share of the threshold group: the node answers partials only. (Boxed: with its
    /// signing key it is several times the size of a root.)
    Share(Box<NodeShare>),
}

impl Custody {
    /// The key this node signs with: the root signing key, or the share's node key.
    pub fn signing_key(&self) -> SigningKey {
        match self {
            Custody::Root(root) => root.root_signing_key(),
            Custody::Share(share) => share.signing_key().clone(),
        }
    }

    /// The mode's name, for messages.
    pub fn mode(&self) -> &'static str {
        match self {
            Custody::Root(_) => "replicated-root",
            Custody::Share(_) => "threshold",
        }
    }
}
