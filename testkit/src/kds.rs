//! A stand-in for AMD's Key Distribution Service: a real HTTP server on loopback that serves
//! whatever documents a test gives it at KDS's URL layout, counts requests per path, and can
//! be told to rate limit (429 with Retry-After), to be down (503), or to serve the wrong thing.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    /// Path and query (no leading slash) -> body.
    documents: HashMap<String, Vec<u8>>,
    /// Requests per path and query.
    requests: HashMap<String, u64>,
    /// Answers to give before serving normally again: (status, Retry-After seconds).
    scripted: VecDeque<(u16, Option<u64>)>,
    /// Answer 503 to everything.
    down: bool,
}

/// The running stand-in; stops when dropped.
pub struct KdsStandIn {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for KdsStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    state: Arc<Mutex<State>>,
    uri: axum::http::Uri,
) -> axum::response::Response<axum::body::Body> {
    use axum::http::{header, StatusCode};
    let key = uri
        .path_and_query()
        .map(|p| p.as_str().trim_start_matches('/').to_string())
        .unwrap_or_default();
    let mut s = state.lock().unwrap();
    *s.requests.entry(key.clone()).or_default() += 1;
    let builder = axum::response::Response::builder();
    if s.down {
        return builder
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .body(axum::body::Body::empty())
            .unwrap();
    }
    if let Some((status, retry_after)) = s.scripted.pop_front() {
        let mut b = builder.status(status);
        if let Some(secs) = retry_after {
            b = b.header(header::RETRY_AFTER, secs.to_string());
        }
        return b.body(axum::body::Body::empty()).unwrap();
    }
    match s.documents.get(&key) {
        Some(body) => builder
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(axum::body::Body::from(body.clone()))
            .unwrap(),
        None => builder
            .status(StatusCode::NOT_FOUND)
            .body(axum::body::Body::empty())
            .unwrap(),
    }
}

impl KdsStandIn {
    /// Starts serving on a loopback address of its own.
    pub async fn start() -> KdsStandIn {
        let listener = tokio::net::TcpListener::bind((crate::next_loopback(), 0))
            .await
            .expect("bind the KDS stand-in");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let state = shared.clone();
            async move { answer(state, uri).await }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        KdsStandIn { addr, state, task }
    }

    /// Its base URL (`http://127.0.x.y:port`; plain http is allowed to loopback).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `body` at `path` (path and query, no leading slash, as KDS's layout has it).
    pub fn serve(&self, path: &str, body: Vec<u8>) {
        self.state
            .lock()
            .unwrap()
            .documents
            .insert(path.to_string(), body);
    }

    /// Stops serving `path` (404 from now on).
    pub fn forget(&self, path: &str) {
        self.state.lock().unwrap().documents.remove(path);
    }

    /// Requests so far for `path`.
    pub fn requests(&self, path: &str) -> u64 {
        self.state
            .lock()
            .unwrap()
            .requests
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Requests so far for any path.
    pub fn total_requests(&self) -> u64 {
        self.state.lock().unwrap().requests.values().sum()
    }

    /// Answers the next request with `status` (and a Retry-After of `retry_after` seconds),
    /// then serves normally again.
    pub fn answer_next(&self, status: u16, retry_after: Option<u64>) {
        self.state
            .lock()
            .unwrap()
            .scripted
            .push_back((status, retry_after));
    }

    /// Answers 503 to everything while `down`.
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }
}
