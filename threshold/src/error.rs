/// Why a threshold operation failed. Every variant names the node it is about, where there is
/// one, so that a guest can say which node answered wrongly.
#[derive(Debug, thiserror::Error)]
pub enum ThresholdError {
    /// `(app_id, epoch)` could not be mapped to a point (not expected: RFC 9380's map is
    /// total).
    #[error("hash to curve failed")]
    HashToCurve,
    /// A node index outside 1..=n, or a node the group does not have.
    #[error("node {0} is not a member of the group")]
    UnknownNode(u16),
    /// The same node's partial was given twice.
    #[error("node {0} answered twice")]
    DuplicateNode(u16),
    /// A point that is not a valid compressed secp256k1 point (or is the identity).
    #[error("node {node}: {what} is not a valid secp256k1 point")]
    BadPoint {
        /// The node that sent it (0: not a node's).
        node: u16,
        /// Which point.
        what: &'static str,
    },
    /// A scalar that is not in [0, n).
    #[error("node {node}: {what} is not a valid secp256k1 scalar")]
    BadScalar {
        /// The node that sent it (0: not a node's).
        node: u16,
        /// Which scalar.
        what: &'static str,
    },
    /// The partial's proof does not verify against the node's verifying share: the node used
    /// another share, or the answer was changed on the way.
    #[error("node {0}: the partial's proof does not verify against its verifying share")]
    ProofFails(u16),
    /// Partials for different apps or epochs were given to one combination.
    #[error("nodes {0} and {1} answered for different apps or epochs")]
    MixedInputs(u16, u16),
    /// The operating system's random number generator failed: no proof is made without it.
    #[error("the random number generator failed")]
    Randomness,
    /// A partial verified under another group than the one it is combined under.
    #[error("node {0}: its partial was verified under another group")]
    OtherGroup(u16),
    /// More nodes than [`crate::group::MAX_NODES`].
    #[error("{0} nodes, at most 255")]
    TooManyNodes(usize),
    /// Fewer good partials than the threshold.
    #[error("{got} valid partial(s), {need} needed")]
    NotEnough {
        /// Valid partials given.
        got: usize,
        /// The group's threshold.
        need: u16,
    },
    /// The group's public keys are not those of one polynomial: the verifying shares of the
    /// nodes used do not interpolate to the group key.
    #[error("the verifying shares of nodes {0:?} do not interpolate to the group key")]
    InconsistentGroup(Vec<u16>),
    /// A threshold of 0, or above the number of nodes.
    #[error("threshold {threshold} of {nodes} nodes")]
    BadThreshold {
        /// The threshold.
        threshold: u16,
        /// The nodes.
        nodes: usize,
    },
    /// A partial on the wire that is not [`crate::partial::PARTIAL_LEN`] bytes long.
    #[error("a partial is {0} bytes, 99 expected")]
    BadLength(usize),
    /// The key generation (FROST's DKG) failed.
    #[error("key generation: {0}")]
    Dkg(#[source] frost_secp256k1::Error),
    /// A node's key-generation package is malformed or fails its check (a proof of knowledge,
    /// a share that does not match its sender's commitments).
    #[error("key generation: node {node}'s package is refused: {source}")]
    KeyGenPackage {
        /// The node that sent it.
        node: u16,
        /// FROST's reason.
        #[source]
        source: frost_secp256k1::Error,
    },
    /// A key-generation step was given no package from this node.
    #[error("key generation: no package from node {0}")]
    MissingNode(u16),
    /// A share that is not the one the group lists for its node.
    #[error("node {0}: the share is not the one the group lists")]
    ShareNotInGroup(u16),
    /// A re-share needs at least the threshold of the group's nodes, each a member.
    #[error("a re-share among nodes {members:?}: {why}")]
    BadMembers {
        /// The nodes named.
        members: Vec<u16>,
        /// What is wrong with them.
        why: &'static str,
    },
    /// A repaired share does not match the verifying share the group's polynomial gives its
    /// node: a helper sent a wrong value (which one cannot be told from the sum).
    #[error("node {0}: the repaired share does not match the group's polynomial")]
    RepairFails(u16),
}
