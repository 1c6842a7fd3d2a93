//! How a client reaches one JSON-RPC endpoint.
//!
//! Every byte between a KMS node and its RPC endpoints crosses the node's virtual NIC, which the
//! node's host owns. So an endpoint is trusted only through what the host cannot forge:
//! - `https://` through rustls (aws-lc-rs), with the Mozilla root set compiled into the binary
//!   (`webpki-roots`: the trusted CAs are part of the measured image, not files on the host's
//!   disk), or a CA certificate pinned for that endpoint, and optionally the SHA-256 of a
//!   public key (SPKI) that must appear in the server's chain;
//! - plain `http://` only to a loopback IP address, which stays inside the VM (a light client in
//!   the same measured image, the dev stack, tests);
//! - no proxies (the `HTTP_PROXY` environment is the host's) and no redirects (a loopback
//!   endpoint cannot send the client elsewhere).

use crate::error::ChainError;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::client::RpcClient;
use alloy::transports::http::reqwest;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;

/// One JSON-RPC endpoint and how its TLS server is authenticated.
#[derive(Clone, PartialEq, Eq)]
pub struct RpcEndpoint {
    url: reqwest::Url,
    /// DER certificates: when non-empty, the only CAs trusted for this endpoint (instead of
    /// the Mozilla roots).
    ca_certs: Vec<Vec<u8>>,
    /// SHA-256 of the SubjectPublicKeyInfo the server's own certificate must carry.
    spki_sha256: Option<[u8; 32]>,
}

impl std::fmt::Debug for RpcEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcEndpoint")
            .field("url", &self.label())
            .field("pinned_cas", &self.ca_certs.len())
            .field("spki_sha256", &self.spki_sha256.map(hex::encode))
            .finish()
    }
}

impl std::fmt::Display for RpcEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

impl RpcEndpoint {
    /// Parses and checks a URL: `https://` anywhere, `http://` only to a loopback IP address.
    pub fn new(url: &str) -> Result<RpcEndpoint, ChainError> {
        let parsed: reqwest::Url = url.trim().parse().map_err(|e| {
            ChainError::Config(format!("RPC URL {:?} is not a URL: {e}", redact_str(url)))
        })?;
        let endpoint = RpcEndpoint {
            url: parsed,
            ca_certs: Vec::new(),
            spki_sha256: None,
        };
        match endpoint.url.scheme() {
            "https" => {}
            "http" if endpoint.is_loopback() => {}
            "http" => {
                return Err(ChainError::Config(format!(
                    "RPC URL {}: plain http is accepted only to a loopback IP address (127.0.0.0/8, ::1), \
                     which stays inside this VM; anything else crosses the host's network and must be https://",
                    endpoint.label()
                )))
            }
            other => {
                return Err(ChainError::Config(format!(
                    "RPC URL {}: scheme {other:?} is not supported; use https:// (or http:// to a loopback address)",
                    endpoint.label()
                )))
            }
        }
        if endpoint.url.host_str().is_none_or(str::is_empty) {
            return Err(ChainError::Config(format!(
                "RPC URL {}: no host",
                endpoint.label()
            )));
        }
        Ok(endpoint)
    }

    /// Trusts only the CA certificates in `pem` for this endpoint.
    pub fn with_ca_pem(mut self, pem: &[u8]) -> Result<RpcEndpoint, ChainError> {
        let certs = pem_certificates(pem).map_err(|e| {
            ChainError::Config(format!("pinned CA of RPC endpoint {}: {e}", self.label()))
        })?;
        self.require_https("a pinned CA")?;
        self.ca_certs = certs;
        Ok(self)
    }

    /// Requires the server's own certificate (the leaf) to carry the public key with this SPKI
    /// SHA-256. (To pin a CA, pin its certificate with [`Self::with_ca_pem`].)
    pub fn with_spki_sha256(mut self, hash: [u8; 32]) -> Result<RpcEndpoint, ChainError> {
        self.require_https("a pinned SPKI hash")?;
        self.spki_sha256 = Some(hash);
        Ok(self)
    }

    fn require_https(&self, what: &str) -> Result<(), ChainError> {
        if self.url.scheme() == "https" {
            Ok(())
        } else {
            Err(ChainError::Config(format!(
                "RPC endpoint {}: {what} needs an https:// URL",
                self.label()
            )))
        }
    }

    /// The URL (API keys in paths or queries included). Never log it: use [`Self::label`].
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// The pinned CA certificates (DER).
    pub fn ca_certs(&self) -> &[Vec<u8>] {
        &self.ca_certs
    }

    /// The pinned SPKI SHA-256 of the server's own key, if any.
    pub fn spki_sha256(&self) -> Option<[u8; 32]> {
        self.spki_sha256
    }

    /// `scheme://host:port`, with any path, query or credentials left out: providers put API
    /// keys there, and this is what messages and logs show.
    pub fn label(&self) -> String {
        redact(&self.url)
    }

    /// `text` with this endpoint's URL (and its path and query) replaced by the label: the
    /// errors of HTTP clients quote the URL they failed on.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.replace(self.url.as_str(), &self.label());
        let tail = &self.url[url::Position::BeforePath..];
        if tail != "/" && !tail.is_empty() {
            out = out.replace(tail, "/…");
        }
        out
    }

    /// The host, lower-cased, as quorum distinctness compares it.
    pub fn host(&self) -> String {
        match self.url.host() {
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            // [::ffff:a.b.c.d] is a.b.c.d.
            Some(url::Host::Ipv6(ip)) => ip
                .to_ipv4_mapped()
                .map_or_else(|| ip.to_string(), |v4| v4.to_string()),
            Some(url::Host::Domain(d)) => d.trim_end_matches('.').to_ascii_lowercase(),
            None => String::new(),
        }
    }

    fn is_loopback(&self) -> bool {
        match self.url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            // A name is resolved through files and DNS the host controls.
            _ => false,
        }
    }

    /// A provider for this endpoint (no fillers: reads need none, and each would add RPC
    /// calls). Callers bound each request's time themselves, to report it as a timeout.
    pub fn provider(&self) -> Result<DynProvider, ChainError> {
        Ok(ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_client(self.rpc_client()?)
            .erased())
    }

    /// The JSON-RPC client under [`Self::provider`], for providers with a wallet.
    pub fn rpc_client(&self) -> Result<RpcClient, ChainError> {
        // The TLS configuration is set for http URLs too, though unused there: reqwest has no
        // default crypto provider in this build, so nothing can fall back to roots read from
        // the host's disk.
        let mut builder = client_builder(self.tls_config()?);
        if self.url.scheme() == "https" {
            builder = builder.https_only(true);
        }
        let client = builder.build().map_err(|e| {
            ChainError::Config(format!(
                "RPC endpoint {}: cannot build the HTTP client: {e}",
                self.label()
            ))
        })?;
        Ok(RpcClient::new_http_with_client(client, self.url.clone()))
    }

    fn tls_config(&self) -> Result<rustls::ClientConfig, ChainError> {
        let err = |e: &dyn std::fmt::Display| {
            ChainError::Config(format!("TLS for RPC endpoint {}: {e}", self.label()))
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        if self.ca_certs.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        } else {
            for der in &self.ca_certs {
                roots
                    .add(rustls::pki_types::CertificateDer::from(der.clone()))
                    .map_err(|e| err(&e))?;
            }
        }
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| err(&e))?;
        let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> = match self.spki_sha256 {
            Some(pin) => Arc::new(SpkiPinned { inner: webpki, pin }),
            None => webpki,
        };
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| err(&e))?
            .dangerous()
            // The WebPKI verifier with our roots, wrapped by the SPKI pin when one is set: the
            // pin adds a condition, it never replaces chain validation.
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth())
    }
}

/// A reqwest builder the way every client of this crate is built: no proxy, no redirects, TLS as
/// configured here.
pub(crate) fn client_builder(tls: rustls::ClientConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .tls_backend_preconfigured(tls)
}

/// An HTTP client built like this crate's own (no proxy, no redirects, this TLS configuration),
/// for components that speak plain JSON over HTTP to the same kind of endpoints.
pub fn http_client(endpoint: &RpcEndpoint) -> Result<reqwest::Client, ChainError> {
    client_builder(endpoint.tls_config()?)
        .build()
        .map_err(|e| ChainError::Config(format!("HTTP client for {}: {e}", endpoint.label())))
}

fn redact(url: &reqwest::Url) -> String {
    let mut s = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        s.push_str(&format!(":{port}"));
    }
    if url.path() != "/" || url.query().is_some() {
        s.push_str("/…");
    }
    s
}

fn redact_str(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?']).next().unwrap_or("");
            let host = host.rsplit('@').next().unwrap_or(host);
            format!("{scheme}://{host}")
        }
        None => "(not a URL)".into(),
    }
}

/// The certificates of a PEM file, as DER.
fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        return Err("no CERTIFICATE in the PEM file".into());
    }
    Ok(certs)
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo (DER).
pub fn spki_sha256_of_certificate(der: &[u8]) -> Result<[u8; 32], String> {
    use der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(der).map_err(|e| e.to_string())?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| e.to_string())?;
    Ok(Sha256::digest(spki).into())
}

/// Chain validation as usual, then: the server's own certificate must carry the pinned public
/// key. A CA the Mozilla set trusts, but that issued a certificate to someone else for this
/// name, does not pass. Only the leaf counts: webpki ignores intermediates it does not use, so
/// anyone could append the (public) pinned certificate to their own chain.
#[derive(Debug)]
struct SpkiPinned {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    pin: [u8; 32],
}

impl rustls::client::danger::ServerCertVerifier for SpkiPinned {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        if spki_sha256_of_certificate(end_entity).is_ok_and(|h| h == self.pin) {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(PinMismatch(
                    self.pin,
                )))),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[derive(Debug)]
struct PinMismatch([u8; 32]);

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server's certificate does not carry the pinned public key (SPKI SHA-256 {})",
            hex::encode(self.0)
        )
    }
}

impl std::error::Error for PinMismatch {}

/// If a transport error is a refused TLS handshake, why, in words an operator can act on.
pub(crate) fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(describe_rustls(r));
        }
        // io::Error's `source()` skips the error it wraps (it answers that error's source):
        // step into the wrapped error itself.
        next = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

fn describe_rustls(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => {
                "the server's certificate is not issued by a trusted CA (unknown issuer)".into()
            }
            C::Expired | C::ExpiredContext { .. } => "the server's certificate has expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet".into()
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "the server's certificate is not valid for this host name".into()
            }
            C::Revoked => "the server's certificate is revoked".into(),
            C::BadSignature => "the server's certificate has a bad signature".into(),
            C::Other(o) => o.to_string(),
            other => format!("the server's certificate was refused: {other:?}"),
        },
        other => format!("TLS handshake failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_to_loopback_ip_addresses() {
        assert!(RpcEndpoint::new("http://127.0.0.1:8545").is_ok());
        assert!(RpcEndpoint::new("http://127.0.0.9:8545").is_ok());
        assert!(RpcEndpoint::new("http://[::1]:8545").is_ok());
        assert!(RpcEndpoint::new("https://rpc.example").is_ok());
        for bad in [
            "http://10.0.0.2:8545",
            "http://rpc.example",
            "http://localhost:8545",
            "http://[::ffff:10.0.0.1]:8545",
        ] {
            let e = RpcEndpoint::new(bad).unwrap_err().to_string();
            assert!(e.contains("only to a loopback IP address"), "{bad}: {e}");
        }
        assert!(RpcEndpoint::new("ws://127.0.0.1:8546").is_err());
        assert!(RpcEndpoint::new("127.0.0.1:8545").is_err());
    }

    #[test]
    fn labels_leave_api_keys_out() {
        let e = RpcEndpoint::new("https://mainnet.example/v3/SECRETKEY?x=1").unwrap();
        assert_eq!(e.label(), "https://mainnet.example/…");
        assert!(!format!("{e:?}").contains("SECRETKEY"));
        let err = RpcEndpoint::new("ftp://user:SECRET@host/SECRETPATH")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("SECRET"), "{err}");
    }

    #[test]
    fn errors_are_redacted_to_the_label() {
        let e = RpcEndpoint::new("https://rpc.example:8443/v3/SECRETKEY?token=T0KEN").unwrap();
        let text =
            "error sending request for url (https://rpc.example:8443/v3/SECRETKEY?token=T0KEN): \
                    and again /v3/SECRETKEY?token=T0KEN";
        let clean = e.redact(text);
        assert!(
            !clean.contains("SECRETKEY") && !clean.contains("T0KEN"),
            "{clean}"
        );
        assert!(clean.contains("https://rpc.example:8443/…"), "{clean}");
    }

    #[test]
    fn pins_need_https() {
        let http = RpcEndpoint::new("http://127.0.0.1:1").unwrap();
        assert!(http.clone().with_spki_sha256([0; 32]).is_err());
        assert!(RpcEndpoint::new("https://rpc.example")
            .unwrap()
            .with_ca_pem(b"not pem")
            .is_err());
    }

    #[test]
    fn hosts_compare_case_insensitively() {
        let a = RpcEndpoint::new("https://RPC.example.").unwrap();
        let b = RpcEndpoint::new("https://rpc.example:8443/x").unwrap();
        assert_eq!(a.host(), b.host());
        let v4 = RpcEndpoint::new("https://192.0.2.7").unwrap();
        let mapped = RpcEndpoint::new("https://[::ffff:192.0.2.7]").unwrap();
        assert_eq!(v4.host(), mapped.host());
    }
}
