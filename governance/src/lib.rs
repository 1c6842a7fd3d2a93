//! Governance of an snpkms registry, beside the node's read path ([`snpkms_chain_client`]) and
//! not in it: the registry owner's and app owners' transactions ([`Owner`]), deployment
//! ([`deploy_registry`]), status views ([`Inspector`]) and the audit trail of every
//! authorization event ([`AuditReader`]). A KMS node links none of it.

#![warn(missing_docs)]

mod audit;
mod deploy;
mod inspect;
mod owner;

pub use audit::{AuditEvent, AuditKind, AuditReader};
pub use deploy::{deploy_registry, deploy_registry_with_progress, Deployment};
pub use inspect::{AppStatus, Inspector, KmsStanding, RegistryStatus};
pub use owner::{device_id, signer_from_env, signer_from_file, Owner, Progress, TxOutcome};
