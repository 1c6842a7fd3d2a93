//! Why a document could not be had.

/// A KDS client that cannot be built from its settings.
#[derive(Debug, thiserror::Error)]
#[error("KDS: {0}")]
pub struct KdsConfigError(pub String);

/// Why [`KdsClient::fetch`](crate::KdsClient::fetch) returned nothing. `E` is the error of the
/// caller's `accept` check.
#[derive(Debug, thiserror::Error)]
pub enum FetchError<E: std::error::Error + 'static> {
    /// No source had it: every URL failed (down, timed out, refused the request, rate limited
    /// past the bound, not found) and the store had no acceptable copy. Retrying later may
    /// help; the reasons are listed per source.
    #[error("could not get {what} from {}: {}", sources_label(.sources), .reasons.join("; "))]
    Unavailable {
        /// The document.
        what: String,
        /// The sources tried (URL labels, `the offline store`).
        sources: Vec<String>,
        /// Why each failed.
        reasons: Vec<String>,
    },
    /// A copy was found, and the caller cannot use it (see
    /// [`Rejection::Caller`](crate::Rejection::Caller)).
    #[error("{error}")]
    Unusable {
        /// The document.
        what: String,
        /// What the check said.
        #[source]
        error: E,
    },
    /// A source answered with something the check refused (another chip's VCEK, a forged
    /// chain) and no source gave an acceptable answer: an attack or a broken mirror, not an
    /// outage.
    #[error("{source_label} served {what} that does not verify: {error}")]
    Refused {
        /// The document.
        what: String,
        /// The URL label it came from.
        source_label: String,
        /// What the check said.
        #[source]
        error: E,
    },
}

fn sources_label(sources: &[String]) -> String {
    if sources.is_empty() {
        "no source (no KDS URL is configured and the offline store is empty)".into()
    } else {
        sources.join(", ")
    }
}
