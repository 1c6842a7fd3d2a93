//! gRPC's status conventions for what tonic refuses before a handler runs. tonic answers a
//! message that does not decode with INTERNAL and one over the size limit with OUT_OF_RANGE;
//! gRPC's convention (and what clients retry on, or not) is INVALID_ARGUMENT (the client sent
//! bytes that are not the message) and RESOURCE_EXHAUSTED (the message is over a limit). Such
//! answers come before any handler, as a response with only headers, so the codes are
//! rewritten there; nothing a handler answers is touched.
//!
//! The same place counts what no handler counted, in `snpkms_requests{method,code}`: a request
//! to the KMS service that did not decode, was too large or named no method, with the code it
//! was answered (`method="unknown"` for names that are not the service's, so clients cannot
//! add label values); one whose answer never came (the server's or the client's deadline
//! passed, or the client cancelled, so its future was dropped) as CANCELLED, as tonic answers
//! it.

use crate::metrics::Metrics;
use crate::service::{Counted, METHODS};
use http::header::HeaderValue;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// The layer, over the whole gRPC router.
#[derive(Clone)]
pub struct WireStatusLayer {
    /// Where requests refused before a handler are counted.
    pub metrics: Arc<Metrics>,
}

impl<S> tower_layer::Layer<S> for WireStatusLayer {
    type Service = WireStatus<S>;
    fn layer(&self, inner: S) -> WireStatus<S> {
        WireStatus {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service the layer makes.
#[derive(Clone)]
pub struct WireStatus<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

/// The KMS service's paths; other services (health, reflection) are not counted.
const KMS_PREFIX: &str = "/snpkms.v1.Kms/";

/// The method label of a path, if the path is the KMS service's or no known service's.
fn method_label(path: &str) -> Option<&'static str> {
    if let Some(name) = path.strip_prefix(KMS_PREFIX) {
        return Some(
            METHODS
                .iter()
                .find(|m| **m == name)
                .copied()
                .unwrap_or("unknown"),
        );
    }
    let known = ["/grpc.health.v1.Health/", "/grpc.reflection."];
    (!known.iter().any(|p| path.starts_with(p))).then_some("unknown")
}

/// The gRPC code of a headers-only answer.
fn header_code(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let code = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(tonic::Code::from_i32(code))
}

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for WireStatus<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let counted = Counted::default();
        request.extensions_mut().insert(counted.clone());
        let mut tally = Tally {
            metrics: self.metrics.clone(),
            method: method_label(request.uri().path()),
            started: Instant::now(),
            counted,
            answered: false,
        };
        let answer = self.inner.call(request);
        Box::pin(async move {
            let result = answer.await;
            let mut response = result?;
            rewrite(response.headers_mut());
            tally.answered(header_code(response.headers()));
            Ok(response)
        })
    }
}

/// Counts a request no handler counted: with the code of its headers-only answer, or as
/// CANCELLED when it is dropped unanswered (a deadline passed or the client went away).
struct Tally {
    metrics: Arc<Metrics>,
    method: Option<&'static str>,
    started: Instant,
    counted: Counted,
    answered: bool,
}

impl Tally {
    fn answered(&mut self, code: Option<tonic::Code>) {
        self.answered = true;
        if let (Some(method), Some(code), false) = (self.method, code, self.counted.is_set()) {
            self.metrics
                .observe_request(method, code, self.started.elapsed());
        }
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        if let (false, Some(method), false) = (self.answered, self.method, self.counted.is_set()) {
            self.metrics
                .observe_request(method, tonic::Code::Cancelled, self.started.elapsed());
        }
    }
}

/// tonic's messages for the two cases (percent-encoded in `grpc-message`).
const UNDECODABLE: &str = "failed to decode Protobuf message";
const TOO_LARGE: &str = "message length too large";

fn rewrite(headers: &mut http::HeaderMap) {
    let code = headers.get("grpc-status").and_then(|v| v.to_str().ok());
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(|m| m.replace("%20", " "))
        .unwrap_or_default();
    let new = match code {
        // INTERNAL -> INVALID_ARGUMENT
        Some("13") if message.contains(UNDECODABLE) => "3",
        // OUT_OF_RANGE -> RESOURCE_EXHAUSTED
        Some("11") if message.contains(TOO_LARGE) => "8",
        _ => return,
    };
    headers.insert("grpc-status", HeaderValue::from_static(new));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: &str, message: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from_str(code).unwrap());
        h.insert("grpc-message", HeaderValue::from_str(message).unwrap());
        rewrite(&mut h);
        h
    }

    #[test]
    fn labels_are_the_services_methods_or_unknown() {
        assert_eq!(method_label("/snpkms.v1.Kms/GetAppKey"), Some("GetAppKey"));
        assert_eq!(method_label("/snpkms.v1.Kms/Nope"), Some("unknown"));
        assert_eq!(method_label("/x.Y/Z"), Some("unknown"));
        assert_eq!(method_label("/grpc.health.v1.Health/Check"), None);
        assert_eq!(
            method_label("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
            None
        );
    }

    #[test]
    fn only_tonics_own_refusals_are_rewritten() {
        let undecodable = status("13", "failed%20to%20decode%20Protobuf%20message:%20x");
        assert_eq!(undecodable["grpc-status"], "3");
        let too_large = status("11", "Error,%20decoded%20message%20length%20too%20large");
        assert_eq!(too_large["grpc-status"], "8");
        // A handler's INTERNAL (the log failed) stays INTERNAL.
        assert_eq!(status("13", "the%20key-release%20log")["grpc-status"], "13");
        assert_eq!(status("7", UNDECODABLE)["grpc-status"], "7");
    }
}
