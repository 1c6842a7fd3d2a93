//! A client of AMD's Key Distribution Service (KDS): the VCEK of a chip at a TCB, the
//! ASK/ARK and ASVK/ARK chains and the CRL of a product, from a list of base URLs (AMD's, then
//! mirrors), with a cache on disk that doubles as the offline store an operator fills with
//! `snpkms certs fetch` / `snpkms certs import`.
//!
//! Everything that comes back is only data. The caller passes an `accept` function (the
//! verifier's chain check against the pinned ARK) and the client returns the first answer it
//! accepts: from the store (whose files the host can write, so they are checked like anything
//! else), then from each URL in turn. Only accepted answers are written to the store, and a
//! stored copy is never deleted (only replaced by an accepted download).
//!
//! KDS limits requests per client: one fetch per document at a time (concurrent callers wait
//! for it), a timeout per request, bounded retries with backoff, and `429 Retry-After`
//! respected up to a bound. Every URL goes through the node's TLS rules
//! ([`snpkms_chain_client::RpcEndpoint`]): https with the compiled-in roots or a pinned CA,
//! plain http only to loopback, no proxies, no redirects.

#![warn(missing_docs)]

mod client;
mod document;
mod error;
mod store;

pub use client::{
    FetchOutcome, KdsClient, KdsObserver, KdsSettings, NoObserver, Rejection, AMD_KDS_URL,
    FETCHED_ENTRIES, NOT_FOUND_ENTRIES,
};
pub use document::Document;
pub use error::{FetchError, KdsConfigError};
pub use store::CertStore;
