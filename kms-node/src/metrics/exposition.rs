//! `/metrics` over HTTP, in the format the scraper asks for: OpenMetrics 1.0 to those that
//! list `application/openmetrics-text` (Prometheus does, first), the Prometheus text format
//! 0.0.4 to everyone else (`text/plain;version=0.0.4`, `*/*`, no Accept: what
//! `prometheus_client`'s parser, most agents and `promtool check metrics` read).

use super::Metrics;
use std::sync::Arc;

/// The two exposition formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
    /// The Prometheus text format, version 0.0.4.
    Text004,
}

impl Format {
    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text004 => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }

    /// The format for an `Accept` header: the media range with the highest quality among the
    /// two (OpenMetrics wins a tie, as it carries more); text 0.0.4 when neither is listed.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let mut best: Option<(f32, Format)> = None;
        for range in accept.unwrap_or_default().split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let mut q = 1.0f32;
            for param in parts {
                if let Some((k, v)) = param.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("q") {
                        // Quality is 0..=1 (RFC 9110); anything else counts as 0.
                        q = v
                            .trim()
                            .parse()
                            .ok()
                            .filter(|q: &f32| (0.0..=1.0).contains(q))
                            .unwrap_or(0.0);
                    }
                }
            }
            let format = match media.as_str() {
                "application/openmetrics-text" => Format::OpenMetrics,
                "text/plain" => Format::Text004,
                _ => continue,
            };
            if q <= 0.0 {
                continue;
            }
            let better = match best {
                None => true,
                Some((bq, bf)) => {
                    q > bq || (q == bq && format == Format::OpenMetrics && bf != format)
                }
            };
            if better {
                best = Some((q, format));
            }
        }
        best.map_or(Format::Text004, |(_, f)| f)
    }
}

/// Serves `/metrics` until `shutdown` resolves.
pub async fn serve(
    listener: crate::connections::AdmittedListener,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move |headers: http::HeaderMap| {
            let metrics = metrics.clone();
            async move {
                let accept = headers
                    .get(http::header::ACCEPT)
                    .and_then(|v| v.to_str().ok());
                let format = Format::negotiate(accept);
                // An exposition that failed to encode is an error, not an empty (healthy
                // looking) scrape.
                match metrics.render(format) {
                    Some(body) => (
                        http::StatusCode::OK,
                        [(http::header::CONTENT_TYPE, format.content_type())],
                        body,
                    ),
                    None => (
                        http::StatusCode::INTERNAL_SERVER_ERROR,
                        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                        "the metrics could not be encoded\n".to_string(),
                    ),
                }
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::Format::{self, OpenMetrics, Text004};

    #[test]
    fn negotiates_what_scrapers_send() {
        // Prometheus 2.x's scrape Accept header.
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), OpenMetrics);
        // Prometheus configured for the classic format first.
        let classic =
            "text/plain;version=0.0.4;q=1,application/openmetrics-text;version=1.0.0;q=0.5";
        assert_eq!(Format::negotiate(Some(classic)), Text004);
        assert_eq!(Format::negotiate(Some("text/plain;version=0.0.4")), Text004);
        assert_eq!(Format::negotiate(Some("*/*")), Text004);
        assert_eq!(Format::negotiate(None), Text004);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text")),
            OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0, text/plain")),
            Text004
        );
        assert_eq!(Format::negotiate(Some("garbage;;q=x,,")), Text004);
        for q in ["NaN", "inf", "2", "-1"] {
            let accept = format!("text/plain;q=0.5, application/openmetrics-text;q={q}");
            assert_eq!(Format::negotiate(Some(&accept)), Text004, "q={q}");
        }
        assert_eq!(
            Format::negotiate(Some("text/plain;q=0.5, Application/OpenMetrics-Text;q=0.5")),
            OpenMetrics
        );
    }
}
