//! The node's listeners: gRPC (Kms, health, reflection; optional TLS) and Prometheus metrics.

use crate::adapters::Node;
use crate::config::NodeConfig;
use crate::connections::{AdmittedListener, ConnectionLimits, Connections};
use crate::metrics::{self, Metrics};
use crate::service::KmsService;
use crate::tls::{TlsError, TlsIdentity};
use crate::NodeError;
use snpkms_api::pb::kms_server::KmsServer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The gRPC server task.
pub type ServerTask = JoinHandle<Result<(), NodeError>>;

async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), NodeError> {
    let listen = |source| NodeError::Listen { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(listen)?;
    let local = listener.local_addr().map_err(listen)?;
    Ok((listener, local))
}

/// The metrics listener's connection limits: a scraper holds one keep-alive connection, so
/// a few per address and a few dozen in all are plenty, and nobody holds the node's
/// descriptors through it (the fullest address gives way, as on the gRPC listener).
const METRICS_CONNECTIONS: ConnectionLimits = ConnectionLimits {
    per_peer: 4,
    total: 32,
    first_bytes: Duration::from_secs(10),
};

/// Serves `/metrics` on the configured address until `shutdown`; the bound address.
pub async fn serve_metrics(
    cfg: &NodeConfig,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Result<Option<SocketAddr>, NodeError> {
    let Some(addr) = cfg.metrics_listen else {
        return Ok(None);
    };
    let (listener, local) = bind(addr).await?;
    let connections = Connections::new(ConnectionLimits {
        first_bytes: Duration::from_secs(cfg.limits.connection_first_bytes_secs.max(1)),
        ..METRICS_CONNECTIONS
    });
    let listener = AdmittedListener::new(&connections, listener)
        .map_err(|source| NodeError::Listen { addr, source })?;
    tasks.push(tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        if let Err(e) = metrics::serve(listener, metrics, stop).await {
            tracing::error!("metrics server stopped: {e}");
        }
    }));
    Ok(Some(local))
}

/// The connection table of the gRPC listener, with the configured limits.
pub fn connections(cfg: &NodeConfig) -> Arc<Connections> {
    let l = &cfg.limits;
    Connections::new(ConnectionLimits {
        per_peer: l.max_connections_per_peer.max(1),
        total: l.max_connections.max(1),
        first_bytes: Duration::from_secs(l.connection_first_bytes_secs.max(1)),
    })
}

/// The gRPC server, running.
pub struct Grpc {
    /// The bound address.
    pub addr: SocketAddr,
    /// The server task.
    pub task: ServerTask,
    /// Sets what the health service reports.
    pub health: tonic_health::server::HealthReporter,
}

/// Serves gRPC on the configured address until `shutdown`.
pub async fn serve_grpc(
    cfg: &NodeConfig,
    node: Arc<Node>,
    metrics: Arc<Metrics>,
    tls: Option<TlsIdentity>,
    connections: Arc<Connections>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Grpc, NodeError> {
    let (listener, addr) = bind(cfg.listen).await?;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_not_serving::<KmsServer<KmsService>>().await;
    // Both reflection versions: many clients still ask only v1alpha (grpcurl before 1.8.8,
    // Python's stock grpc_reflection client, Postman, older IDE plugins).
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(snpkms_api::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let reflection = reflection().build_v1()?;
    let kms = KmsServer::new(KmsService::new(node, metrics.clone(), &cfg.limits))
        .max_decoding_message_size(cfg.limits.max_request_bytes);
    let l = &cfg.limits;
    let mut builder = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(l.max_concurrent_requests)
        .timeout(Duration::from_secs(30))
        // Dead peers are found by HTTP/2 pings and dropped; a connection is closed
        // `max_connection_age` + 30 s after it opened, whatever it is doing (clients
        // reconnect), which also ends handshakes that stalled after their first bytes. (The
        // builder's TCP keepalive would not apply to our own incoming stream.)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_connection_age(Duration::from_secs(l.max_connection_age_secs.max(1)))
        .max_connection_age_grace(Duration::from_secs(30))
        .layer(crate::wire_status::WireStatusLayer { metrics });
    let with_tls = tls.is_some();
    if let Some(tls) = tls {
        builder = builder
            .tls_config(
                tonic::transport::ServerTlsConfig::new()
                    .identity(tonic::transport::Identity::from_pem(
                        tls.cert_pem,
                        tls.key_pem,
                    ))
                    .timeout(Duration::from_secs(l.connection_first_bytes_secs.max(1))),
            )
            .map_err(TlsError::Identity)?;
    }
    let router = builder
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(kms);
    // Connections are admitted by peer and in all (connections.rs), with nodelay set there:
    // serve_with_incoming ignores the builder's, and Nagle with delayed ACKs would add ~40 ms
    // to every small response.
    let incoming = connections.incoming(listener);
    let server = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = shutdown.wait_for(|s| *s).await;
            })
            .await
            .map_err(NodeError::Serve)
    });
    tracing::info!(%addr, tls = with_tls, "gRPC listening");
    Ok(Grpc {
        addr,
        task: server,
        health: reporter,
    })
}
