//! RPC over https: anvil behind a TLS terminator started here, with certificates from a CA made
//! here (rcgen). The node's host owns the network, so only an endpoint that authenticates counts.

use crate::connect;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use snpkms_chain_client::*;
use snpkms_testkit::*;
use std::net::Ipv4Addr;

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `names`, valid from `not_before` to `not_after` (years).
    fn issue(&self, names: &[String], years: (i32, i32)) -> (TlsIdentity, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names.to_vec()).unwrap();
        params.not_before = rcgen::date_time_ymd(years.0, 1, 1);
        params.not_after = rcgen::date_time_ymd(years.1, 1, 1);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (
            TlsIdentity {
                cert_chain_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            },
            cert.der().to_vec(),
        )
    }
}

const VALID: (i32, i32) = (2020, 2100);

async fn tls_proxy(f: &Fixture, ca: &Ca, name: Option<String>, years: (i32, i32)) -> RpcProxy {
    let ip = next_loopback();
    let (identity, _) = ca.issue(&[name.unwrap_or_else(|| ip.to_string())], years);
    RpcProxy::start_tls(&f.chain.url, ip, &identity).await
}

fn config_with(f: &Fixture, endpoints: Vec<RpcEndpoint>) -> ChainConfig {
    let mut cfg = f.config();
    cfg.endpoints = endpoints;
    cfg.retries = 0;
    cfg
}

async fn refused(cfg: ChainConfig) -> (String, String) {
    match ChainClient::connect(cfg).await {
        Err(ChainError::Tls { url, reason }) => (url, reason),
        other => panic!("expected a TLS refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn an_https_endpoint_with_its_ca_pinned_answers() {
    let f = deploy_fixture().await;
    let ca = Ca::new("rpc CA");
    let proxy = tls_proxy(&f, &ca, None, VALID).await;
    assert!(proxy.url.starts_with("https://127."));
    let ep = proxy.endpoint().with_ca_pem(ca.pem().as_bytes()).unwrap();
    let c = connect(config_with(&f, vec![ep])).await;
    assert!(c.is_app_allowed(&f.app_boot_info()).await.unwrap().allowed);
    assert!(
        proxy.count("eth_call") >= 1,
        "the read went through the TLS proxy"
    );
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_naming_the_endpoint() {
    let f = deploy_fixture().await;
    let (ours, theirs) = (Ca::new("our rpc CA"), Ca::new("someone else's CA"));
    let proxy = tls_proxy(&f, &theirs, None, VALID).await;
    let ep = proxy.endpoint().with_ca_pem(ours.pem().as_bytes()).unwrap();
    let (url, reason) = refused(config_with(&f, vec![ep])).await;
    assert_eq!(url, proxy.url);
    assert!(reason.contains("unknown issuer"), "{reason}");
    assert_eq!(
        proxy.count("eth_chainId"),
        0,
        "no request reached the impostor"
    );
}

#[tokio::test]
async fn the_compiled_in_mozilla_roots_do_not_trust_a_private_ca() {
    // No pin: only the Mozilla set applies (never the system store on the host's disk).
    let f = deploy_fixture().await;
    let proxy = tls_proxy(&f, &Ca::new("private CA"), None, VALID).await;
    let (url, reason) = refused(config_with(&f, vec![proxy.endpoint()])).await;
    assert_eq!(url, proxy.url);
    assert!(reason.contains("unknown issuer"), "{reason}");
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let f = deploy_fixture().await;
    let ca = Ca::new("rpc CA");
    let proxy = tls_proxy(&f, &ca, None, (2015, 2020)).await;
    let ep = proxy.endpoint().with_ca_pem(ca.pem().as_bytes()).unwrap();
    let (url, reason) = refused(config_with(&f, vec![ep])).await;
    assert_eq!(url, proxy.url);
    assert!(reason.contains("expired"), "{reason}");
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused() {
    let f = deploy_fixture().await;
    let ca = Ca::new("rpc CA");
    let proxy = tls_proxy(&f, &ca, Some("rpc.other.example".into()), VALID).await;
    let ep = proxy.endpoint().with_ca_pem(ca.pem().as_bytes()).unwrap();
    let (url, reason) = refused(config_with(&f, vec![ep])).await;
    assert_eq!(url, proxy.url);
    assert!(reason.contains("not valid for this host name"), "{reason}");
}

#[tokio::test]
async fn an_spki_pin_admits_only_its_key() {
    let f = deploy_fixture().await;
    let ca = Ca::new("rpc CA");
    let ip = next_loopback();
    let (identity, leaf_der) = ca.issue(&[ip.to_string()], VALID);
    let proxy = RpcProxy::start_tls(&f.chain.url, ip, &identity).await;
    let leaf_pin = spki_sha256_of_certificate(&leaf_der).unwrap();
    let ep = |pin| {
        proxy
            .endpoint()
            .with_ca_pem(ca.pem().as_bytes())
            .unwrap()
            .with_spki_sha256(pin)
            .unwrap()
    };
    let c = connect(config_with(&f, vec![ep(leaf_pin)])).await;
    assert!(c.is_app_allowed(&f.app_boot_info()).await.unwrap().allowed);

    let (url, reason) = refused(config_with(&f, vec![ep([0x5a; 32])])).await;
    assert_eq!(url, proxy.url);
    assert!(reason.contains("pinned public key"), "{reason}");
}

#[tokio::test]
async fn the_pinned_certificate_appended_to_another_chain_does_not_pass() {
    // The pinned certificate is public: an attacker with any valid certificate for the name
    // appends it as an extra "intermediate". Only the server's own key counts.
    let f = deploy_fixture().await;
    let ca = Ca::new("rpc CA");
    let ip = next_loopback();
    let (pinned, pinned_der) = ca.issue(&[ip.to_string()], VALID);
    let (attacker, _) = ca.issue(&[ip.to_string()], VALID);
    let chain = TlsIdentity {
        cert_chain_pem: format!("{}{}", attacker.cert_chain_pem, pinned.cert_chain_pem),
        key_pem: attacker.key_pem,
    };
    let proxy = RpcProxy::start_tls(&f.chain.url, ip, &chain).await;
    let ep = proxy
        .endpoint()
        .with_ca_pem(ca.pem().as_bytes())
        .unwrap()
        .with_spki_sha256(spki_sha256_of_certificate(&pinned_der).unwrap())
        .unwrap();
    let (_, reason) = refused(config_with(&f, vec![ep])).await;
    assert!(reason.contains("pinned public key"), "{reason}");
}

#[tokio::test]
async fn a_lying_endpoint_behind_valid_tls_is_out_voted() {
    let f = deploy_fixture().await;
    let ca = Ca::new("rpc CA");
    let honest_a = tls_proxy(&f, &ca, None, VALID).await;
    let honest_b = tls_proxy(&f, &ca, None, VALID).await;
    let liar = tls_proxy(&f, &ca, None, VALID).await;
    // A valid certificate says who answers, not that the answer is true: the liar flips the
    // `allowed` word of every eth_call.
    liar.set_tamper(|req, resp| {
        if req["method"] == "eth_call" {
            if let Some(s) = resp["result"].as_str() {
                let mut bytes = hex::decode(&s[2..]).unwrap();
                if bytes.len() >= 32 {
                    bytes[31] ^= 1;
                }
                resp["result"] = format!("0x{}", hex::encode(bytes)).into();
            }
        }
    });
    let pinned = |p: &RpcProxy| p.endpoint().with_ca_pem(ca.pem().as_bytes()).unwrap();
    let mut cfg = config_with(
        &f,
        vec![pinned(&honest_a), pinned(&honest_b), pinned(&liar)],
    );
    cfg.quorum = 2;
    let c = connect(cfg).await;
    let mut refused_info = f.app_boot_info();
    refused_info.compose_hash[0] ^= 1;
    // Both directions: the liar can neither allow what the chain refuses nor refuse what it allows.
    let d = c.is_app_allowed(&refused_info).await.unwrap();
    assert_eq!(
        (d.allowed, d.reason.as_str()),
        (false, "compose hash not allowed")
    );
    let d = c.is_app_allowed(&f.app_boot_info()).await.unwrap();
    assert!(d.allowed, "{d:?}");
    assert!(liar.count("eth_call") >= 2, "the liar was asked");
}

#[tokio::test]
async fn plain_http_to_another_host_and_one_host_twice_are_refused() {
    let f = deploy_fixture().await;
    let err = RpcEndpoint::new("http://192.0.2.1:8545").unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
    let ip = Ipv4Addr::new(127, 0, 0, 1);
    let mut cfg = config_with(
        &f,
        vec![
            endpoint(&format!("http://{ip}:1")),
            endpoint(&format!("http://{ip}:2")),
        ],
    );
    cfg.quorum = 2;
    match ChainClient::connect(cfg).await {
        Err(ChainError::Config(e)) => assert!(e.contains("distinct hosts"), "{e}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}
