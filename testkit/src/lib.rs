//! Test support, for dev-dependencies only (as rustls has `rustls-test` and go-sev-guest has
//! `testing/`): a real anvil, a deployed and configured registry, and an RPC proxy that counts
//! and can falsify requests, also behind TLS. Panics on failure: it is only for tests.

#![warn(missing_docs)]
#![allow(clippy::missing_panics_doc)]

pub mod fakes;
pub mod kds;

use alloy::primitives::{Address, B256};
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use snpkms_chain_client::{ChainConfig, ReadAt, RpcEndpoint};
use snpkms_governance::{Deployment, Owner};
use snpkms_local::{LocalChain, LocalRegistry};
use snpkms_verifier::{app_host_data, BootInfo, Product, TcbVersion};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// A loopback address of its own for each server a test starts (all of 127.0.0.0/8 is
/// loopback on Linux), so that endpoints of one quorum are distinct hosts as the client
/// requires.
pub fn next_loopback() -> Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Ipv4Addr::new(127, 0, 1 + (n / 250) as u8, 2 + (n % 250) as u8)
}

/// The workspace root (this crate's parent directory).
pub fn workspace_root() -> PathBuf {
    snpkms_local::workspace_root()
}

/// The anvil binary. Panics (never skips) when it is missing, saying how to install it.
pub fn anvil_path() -> PathBuf {
    snpkms_local::anvil_path().unwrap_or_else(|e| panic!("{e}"))
}

/// A running anvil on a loopback address of its own; killed on drop. The local harness's
/// chain, with test-friendly methods that panic instead of returning errors.
pub struct TestChain {
    /// The harness's chain.
    pub local: LocalChain,
    /// Its JSON-RPC URL.
    pub url: String,
}

/// Starts anvil with its default accounts (10, funded) and automine.
pub fn spawn_anvil() -> TestChain {
    spawn_anvil_with(&[])
}

/// Starts anvil with extra arguments (e.g. `["--timestamp", "1000"]`).
pub fn spawn_anvil_with(args: &[&str]) -> TestChain {
    let local = LocalChain::spawn(&anvil_path(), next_loopback().into(), args)
        .unwrap_or_else(|e| panic!("{e}"));
    TestChain {
        url: local.url.clone(),
        local,
    }
}

impl TestChain {
    /// The i-th funded account's key (0: governor, 1: app owner, 2: stranger in the fixture).
    pub fn signer(&self, i: usize) -> PrivateKeySigner {
        self.local.signer(i)
    }

    /// The i-th account's private key, hex.
    pub fn key_hex(&self, i: usize) -> String {
        self.local.key_hex(i)
    }

    /// A raw provider (no signer), e.g. for `anvil_*` calls.
    pub fn provider(&self) -> &DynProvider {
        self.local.provider()
    }

    /// The head block's number.
    pub async fn head(&self) -> u64 {
        self.local.head().await.expect("eth_blockNumber")
    }

    /// Mines `n` empty blocks.
    pub async fn mine(&self, n: u64) {
        self.local.mine(n).await.expect("anvil_mine");
    }

    /// Turns automine on or off.
    pub async fn set_automine(&self, on: bool) {
        self.local.set_automine(on).await.expect("evm_setAutomine");
    }

    /// Mines one block with this timestamp.
    pub async fn mine_at(&self, timestamp: u64) {
        self.local.mine_at(timestamp).await.expect("mine at");
    }

    /// A client configuration for tests: pinned at `latest`, fast polling, short timeouts.
    pub fn config(&self, registry: Address) -> ChainConfig {
        let mut cfg = ChainConfig::new(endpoint(&self.url), registry);
        cfg.read_at = ReadAt::Confirmations(0);
        cfg.poll_interval = Duration::from_millis(50);
        cfg.request_timeout = Duration::from_secs(2);
        cfg.retries = 0;
        cfg.max_staleness = Duration::from_secs(3600);
        cfg.cache_ttl = Duration::from_secs(600);
        cfg
    }
}

/// `url` as an endpoint; panics if the client would refuse it.
pub fn endpoint(url: &str) -> RpcEndpoint {
    RpcEndpoint::new(url).unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// What the fixture puts on chain; BootInfos built from it are allowed.
pub const OS_IMAGE: [u8; 48] = [0x11; 48];
/// The KMS node launch measurement the fixture allows (that of [`Fixture::kms_boot_info`]).
pub const KMS_MEASUREMENT: [u8; 48] = [0x22; 48];
/// A KMS security-configuration digest the fixture allows.
pub const KMS_CONFIG: [u8; 32] = [0x66; 32];
/// The chip id of every fixture BootInfo: an allowed device of the fixture's app. The KMS chip
/// list stays empty, so KMS nodes may run on it too.
pub const CHIP_ID: [u8; 64] = [0x33; 64];
/// The compose hash the fixture's app allows.
pub const COMPOSE_HASH: [u8; 32] = [0x44; 32];
/// The salt the app owner registers the fixture's app with; with the owner's address it
/// determines the app's address.
pub const APP_SALT: [u8; 32] = [0x55; 32];
/// The minimum TCB the fixture sets for Milan; [`boot_info`] reports exactly this.
pub const MIN_TCB: TcbVersion = TcbVersion {
    bootloader: 3,
    tee: 0,
    snp: 8,
    microcode: 115,
    fmc: 0,
};

/// A deployed registry with one app, configured so that [`Fixture::app_boot_info`] and
/// [`Fixture::kms_boot_info`] are allowed.
pub struct Fixture {
    /// The anvil the registry lives on.
    pub chain: TestChain,
    /// Where the registry was deployed.
    pub deployment: Deployment,
    /// Registry owner (account 0).
    pub governor: Owner,
    /// Owner of `app` (account 1).
    pub app_owner: Owner,
    /// Owns nothing (account 2).
    pub stranger: Owner,
    /// The registered app's id (its AppAuth address).
    pub app: Address,
}

/// Deploys a registry on a fresh anvil and configures it: OS image, KMS measurement, minimum
/// TCB for Milan (the only product allowed), any chip for KMS nodes (tests of the chip list
/// turn that off), one app (compose hash and device allowed).
pub async fn deploy_fixture() -> Fixture {
    deploy_fixture_on(spawn_anvil()).await
}

/// [`deploy_fixture`] on an anvil the test started itself (e.g. with [`spawn_anvil_with`]).
pub async fn deploy_fixture_on(chain: TestChain) -> Fixture {
    let LocalRegistry {
        deployment,
        governor,
        app_owner,
        stranger,
    } = LocalRegistry::deploy(&chain.local, |_| {})
        .await
        .expect("deploy registry");
    governor.add_os_image(&OS_IMAGE).await.expect("addOsImage");
    governor
        .add_kms_measurement(&KMS_MEASUREMENT)
        .await
        .expect("addKmsMeasurement");
    governor
        .add_kms_config(B256::from(KMS_CONFIG))
        .await
        .expect("addKmsConfig");
    governor
        .set_min_tcb(Product::Milan, MIN_TCB)
        .await
        .expect("setMinTcb");
    governor
        .set_any_kms_chip_allowed(true)
        .await
        .expect("setAnyKmsChipAllowed");
    let (app, _) = app_owner
        .register_app(B256::from(APP_SALT))
        .await
        .expect("registerApp");
    app_owner
        .add_compose_hash(app, B256::from(COMPOSE_HASH))
        .await
        .expect("addComposeHash");
    app_owner
        .add_device(app, snpkms_governance::device_id(&CHIP_ID))
        .await
        .expect("addDevice");
    Fixture {
        chain,
        deployment,
        governor,
        app_owner,
        stranger,
        app,
    }
}

impl Fixture {
    /// [`TestChain::config`] for the fixture's registry.
    pub fn config(&self) -> ChainConfig {
        self.chain.config(self.deployment.registry)
    }

    /// An app guest's BootInfo that the fixture allows.
    pub fn app_boot_info(&self) -> BootInfo {
        boot_info(self.app.0 .0, COMPOSE_HASH, OS_IMAGE)
    }

    /// A KMS node's BootInfo that the fixture allows.
    pub fn kms_boot_info(&self) -> BootInfo {
        boot_info([0; 20], [0; 32], KMS_MEASUREMENT)
    }
}

/// A Milan BootInfo at exactly the fixture's minimum TCB.
pub fn boot_info(app_id: [u8; 20], compose_hash: [u8; 32], measurement: [u8; 48]) -> BootInfo {
    BootInfo {
        measurement,
        chip_id: Some(CHIP_ID),
        app_id,
        compose_hash,
        product: Product::Milan,
        reported_tcb: MIN_TCB,
        committed_tcb: MIN_TCB,
        launch_tcb: MIN_TCB,
        host_data: app_host_data(&app_id, &compose_hash),
        guest_svn: 1,
    }
}

type Tamper = Box<dyn Fn(&serde_json::Value, &mut serde_json::Value) + Send + Sync>;
type Rewrite = Box<dyn Fn(&mut serde_json::Value) + Send + Sync>;

struct ProxyState {
    counts: HashMap<String, u64>,
    tamper: Option<Tamper>,
    rewrite: Option<Rewrite>,
    hang: bool,
}

/// A JSON-RPC proxy on a loopback address of its own in front of an upstream node: counts
/// requests by method, can rewrite responses (a lying RPC provider) or stop answering (a hung
/// one). With [`RpcProxy::start_tls`] it is also a TLS terminator.
#[derive(Clone)]
pub struct RpcProxy {
    /// Where clients reach the proxy: `http://` or `https://` and the loopback address and port
    /// it listens on.
    pub url: String,
    state: Arc<Mutex<ProxyState>>,
}

/// What a TLS proxy presents: a PEM certificate chain (leaf first) and its PEM private key.
pub struct TlsIdentity {
    /// PEM certificates, leaf first.
    pub cert_chain_pem: String,
    /// PEM private key of the leaf (any form rustls reads: PKCS#8, SEC1 or PKCS#1).
    pub key_pem: String,
}

impl RpcProxy {
    /// Plain http on `http://127.0.x.y:port`.
    pub async fn start(upstream: &str) -> RpcProxy {
        Self::start_inner(upstream, next_loopback(), None).await
    }

    /// https on `https://{ip}:port` with this identity (the test picks the address its
    /// certificate names).
    pub async fn start_tls(upstream: &str, ip: Ipv4Addr, identity: &TlsIdentity) -> RpcProxy {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(identity.cert_chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).expect("key PEM");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("TLS identity");
        Self::start_inner(
            upstream,
            ip,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
        .await
    }

    async fn start_inner(
        upstream: &str,
        ip: Ipv4Addr,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> RpcProxy {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind proxy");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().expect("proxy addr"));
        let state = Arc::new(Mutex::new(ProxyState {
            counts: HashMap::new(),
            tamper: None,
            rewrite: None,
            hang: false,
        }));
        let client =
            snpkms_chain_client::http_client(&endpoint("http://127.0.0.1")).expect("HTTP client");
        let upstream = upstream.to_string();
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (client, upstream, st) = (client.clone(), upstream.clone(), st.clone());
                match &tls {
                    None => {
                        tokio::spawn(serve(sock, client, upstream, st));
                    }
                    Some(acceptor) => {
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            // A client that refuses our certificate ends here.
                            if let Ok(stream) = acceptor.accept(sock).await {
                                serve(stream, client, upstream, st).await;
                            }
                        });
                    }
                }
            }
        });
        RpcProxy { url, state }
    }

    /// This proxy as a client endpoint.
    pub fn endpoint(&self) -> RpcEndpoint {
        endpoint(&self.url)
    }

    /// Requests seen for `method` so far.
    pub fn count(&self, method: &str) -> u64 {
        self.lock().counts.get(method).copied().unwrap_or(0)
    }

    /// All requests seen so far.
    pub fn total(&self) -> u64 {
        self.lock().counts.values().sum()
    }

    /// Rewrites every response: `f(request, response)`.
    pub fn set_tamper(
        &self,
        f: impl Fn(&serde_json::Value, &mut serde_json::Value) + Send + Sync + 'static,
    ) {
        self.lock().tamper = Some(Box::new(f));
    }

    /// Rewrites every request before it goes upstream (e.g. `latest` -> an older block: a
    /// lagging node).
    pub fn set_request_rewrite(&self, f: impl Fn(&mut serde_json::Value) + Send + Sync + 'static) {
        self.lock().rewrite = Some(Box::new(f));
    }

    /// Stops answering (requests hang) while `true`.
    pub fn set_hang(&self, hang: bool) {
        self.lock().hang = hang;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProxyState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut sock: S,
    client: alloy::transports::http::reqwest::Client,
    upstream: String,
    state: Arc<Mutex<ProxyState>>,
) {
    let mut buf = Vec::new();
    loop {
        let Some((header_len, body_len)) = read_request(&mut sock, &mut buf).await else {
            return;
        };
        let body: Vec<u8> = buf[header_len..header_len + body_len].to_vec();
        buf.drain(..header_len + body_len);
        let mut request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let (hang, body) = {
            let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
            let methods: Vec<String> = match &request {
                serde_json::Value::Array(a) => a.iter().map(method_of).collect(),
                other => vec![method_of(other)],
            };
            for m in methods {
                *st.counts.entry(m).or_default() += 1;
            }
            let body = match &st.rewrite {
                Some(f) => {
                    f(&mut request);
                    serde_json::to_vec(&request).unwrap_or(body)
                }
                None => body,
            };
            (st.hang, body)
        };
        if hang {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
        let Ok(resp) = client
            .post(&upstream)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
        else {
            return;
        };
        let Ok(bytes) = resp.bytes().await else {
            return;
        };
        let mut response: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        {
            let st = state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(t) = &st.tamper {
                t(&request, &mut response);
            }
        }
        let out = serde_json::to_vec(&response).unwrap_or_default();
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            out.len()
        );
        if sock.write_all(head.as_bytes()).await.is_err() || sock.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn method_of(v: &serde_json::Value) -> String {
    v.get("method")
        .and_then(|m| m.as_str())
        .unwrap_or("?")
        .to_string()
}

/// Reads one HTTP request into `buf`; returns (header length, body length).
async fn read_request<S: AsyncRead + Unpin>(
    sock: &mut S,
    buf: &mut Vec<u8>,
) -> Option<(usize, usize)> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let header_len = end + 4;
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let body_len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            while buf.len() < header_len + body_len {
                let n = sock.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some((header_len, body_len));
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
