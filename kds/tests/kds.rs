//! The client against a KDS stand-in (a real HTTP server on loopback) serving AMD's genuine
//! certificates from the verifier's test data, checked with the real verifier.

use snpkms_chain_client::RpcEndpoint;
use snpkms_kds::*;
use snpkms_testkit::kds::KdsStandIn;
use snpkms_verifier::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// 2026-06-01, inside the genuine VCEKs' validity.
const AT: UnixTime = UnixTime(1_780_272_000);

fn amd(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../verifier/testdata/amd")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn vcek_der(name: &str) -> Vec<u8> {
    CertificateBundle::from_endorsement(&amd(name))
        .unwrap()
        .vcek
        .unwrap()
}

struct Genuine {
    verifier: Verifier,
    id: VcekId,
    doc: Document,
}

fn milan() -> Genuine {
    let verifier = Verifier::new(TrustRoots::amd(), Policy::default());
    let parsed = verifier.parse(&amd("ms-milan-report.bin")).unwrap();
    let id = verifier.vcek_id(&parsed).unwrap();
    let doc = Document::vcek(&id);
    Genuine { verifier, id, doc }
}

/// The node's check: the chain verifies to a pinned ARK and is the VCEK asked for.
fn accept<'a>(
    g: &'a Genuine,
) -> impl Fn(&[u8]) -> Result<VerifiedVcek, Rejection<VerifyError>> + 'a {
    move |der| {
        let check = || -> Result<VerifiedVcek, VerifyError> {
            let certs = CertificateBundle::from_endorsement(der)?;
            let chain = g
                .verifier
                .verify_chain(&certs, Endorser::Vcek, Some(g.id.product), AT)?;
            chain.check_is(&g.id)?;
            Ok(chain)
        };
        check().map_err(Rejection::Document)
    }
}

#[derive(Default)]
struct Counts {
    store: AtomicU64,
    fetched: AtomicU64,
    failed: AtomicU64,
}

impl KdsObserver for Counts {
    fn outcome(&self, outcome: FetchOutcome) {
        match outcome {
            FetchOutcome::StoreHit => &self.store,
            FetchOutcome::Fetched => &self.fetched,
            FetchOutcome::Failed(_) => &self.failed,
        }
        .fetch_add(1, Ordering::Relaxed);
    }
}

fn client(urls: &[String], store: Option<&std::path::Path>, counts: Arc<Counts>) -> KdsClient {
    let mut settings =
        KdsSettings::new(urls.iter().map(|u| RpcEndpoint::new(u).unwrap()).collect());
    settings.backoff = Duration::from_millis(20);
    settings.timeout = Duration::from_secs(5);
    KdsClient::new(settings, store.map(CertStore::new), counts).unwrap()
}

#[tokio::test]
async fn a_vcek_is_fetched_once_then_served_from_the_store() {
    let kds = KdsStandIn::start().await;
    let g = milan();
    kds.serve(&g.doc.url_path, vcek_der("ms-milan-vcek.pem"));
    let dir = tempfile::tempdir().unwrap();
    let counts = Arc::new(Counts::default());
    let c = client(&[kds.url()], Some(dir.path()), counts.clone());

    let chain = c.fetch(&g.doc, accept(&g)).await.unwrap();
    assert_eq!(chain.claims().hwid.as_deref(), Some(&g.id.hwid[..]));
    assert_eq!(kds.requests(&g.doc.url_path), 1);
    assert!(dir.path().join(&g.doc.store_path).is_file());

    // Later callers: no second fetch.
    for _ in 0..8 {
        assert!(c.fetch(&g.doc, accept(&g)).await.is_ok());
    }
    assert_eq!(kds.requests(&g.doc.url_path), 1);
    assert_eq!(counts.fetched.load(Ordering::Relaxed), 1);
    assert_eq!(counts.store.load(Ordering::Relaxed), 8);

    // Another client on the same store with no URL at all (an offline node) has it too.
    let offline = client(&[], Some(dir.path()), Arc::new(Counts::default()));
    assert!(offline.fetch(&g.doc, accept(&g)).await.is_ok());
}

#[tokio::test]
async fn concurrent_callers_share_one_fetch() {
    let kds = KdsStandIn::start().await;
    let g = Arc::new(milan());
    kds.serve(&g.doc.url_path, vcek_der("ms-milan-vcek.pem"));
    let dir = tempfile::tempdir().unwrap();
    let c = Arc::new(client(
        &[kds.url()],
        Some(dir.path()),
        Arc::new(Counts::default()),
    ));
    // The first answer is a 503, so the first fetch takes a retry's time while the other
    // callers arrive: they wait for it and then find the VCEK in the store.
    kds.answer_next(503, None);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (c, g) = (c.clone(), g.clone());
        tasks.push(tokio::spawn(async move {
            c.fetch(&g.doc, accept(&g)).await.map(|_| ())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // The 503 and the one fetch after it; each of the others alone would have asked too.
    assert_eq!(kds.requests(&g.doc.url_path), 2);
}

#[tokio::test]
async fn a_rate_limited_kds_is_asked_again_after_retry_after() {
    let kds = KdsStandIn::start().await;
    let g = milan();
    kds.serve(&g.doc.url_path, vcek_der("ms-milan-vcek.pem"));
    kds.answer_next(429, Some(1));
    let c = client(&[kds.url()], None, Arc::new(Counts::default()));
    let started = Instant::now();
    c.fetch(&g.doc, accept(&g)).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(kds.requests(&g.doc.url_path), 2);

    // A Retry-After beyond the bound is not waited for: the fetch fails now (a fresh client:
    // this one remembers what it fetched), and no caller asks that KDS again meanwhile.
    let c = client(&[kds.url()], None, Arc::new(Counts::default()));
    kds.answer_next(429, Some(3600));
    let err = c.fetch(&g.doc, accept(&g)).await.unwrap_err();
    assert!(matches!(err, FetchError::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("rate limiting"), "{err}");
    let asked = kds.requests(&g.doc.url_path);
    let err = c.fetch(&g.doc, accept(&g)).await.unwrap_err();
    assert!(err.to_string().contains("asked not to be asked"), "{err}");
    assert_eq!(kds.requests(&g.doc.url_path), asked);
}

#[tokio::test]
async fn a_kds_that_is_down_gives_unavailable_and_is_used_again_when_back() {
    let kds = KdsStandIn::start().await;
    let g = milan();
    kds.serve(&g.doc.url_path, vcek_der("ms-milan-vcek.pem"));
    kds.set_down(true);
    let c = client(&[kds.url()], None, Arc::new(Counts::default()));
    let err = c.fetch(&g.doc, accept(&g)).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, FetchError::Unavailable { .. }), "{text}");
    assert!(
        text.starts_with("could not get the VCEK for Milan chip"),
        "{text}"
    );
    assert!(text.contains(&kds.url()), "{text}");
    assert_eq!(kds.requests(&g.doc.url_path), 3, "bounded retries");
    kds.set_down(false);
    assert!(c.fetch(&g.doc, accept(&g)).await.is_ok());
}

#[tokio::test]
async fn a_mirror_that_is_down_or_lying_does_not_stop_the_next() {
    let bad = KdsStandIn::start().await;
    let good = KdsStandIn::start().await;
    let g = milan();
    // The first serves another Milan chip's genuine VCEK where this one's should be.
    bad.serve(&g.doc.url_path, amd("milan-v2-vcek.der"));
    good.serve(&g.doc.url_path, vcek_der("ms-milan-vcek.pem"));
    let c = client(&[bad.url(), good.url()], None, Arc::new(Counts::default()));
    assert!(c.fetch(&g.doc, accept(&g)).await.is_ok());
    assert_eq!(good.requests(&g.doc.url_path), 1);
}

#[tokio::test]
async fn another_chips_vcek_or_a_forged_one_is_refused_and_not_kept() {
    let kds = KdsStandIn::start().await;
    let g = milan();
    let dir = tempfile::tempdir().unwrap();
    let c = client(&[kds.url()], Some(dir.path()), Arc::new(Counts::default()));
    for wrong in [
        vcek_der("ms-genoa-vcek.pem"),
        amd("milan-v2-vcek.der"),
        b"not a certificate".to_vec(),
    ] {
        kds.serve(&g.doc.url_path, wrong);
        let err = c.fetch(&g.doc, accept(&g)).await.unwrap_err();
        assert!(matches!(err, FetchError::Refused { .. }), "{err}");
        assert!(err.to_string().contains("does not verify"), "{err}");
        assert!(!dir.path().join(&g.doc.store_path).exists());
    }
}

#[tokio::test]
async fn a_stored_copy_that_fails_its_check_is_replaced_by_a_good_download() {
    let kds = KdsStandIn::start().await;
    let g = milan();
    kds.serve(&g.doc.url_path, vcek_der("ms-milan-vcek.pem"));
    let dir = tempfile::tempdir().unwrap();
    let store = CertStore::new(dir.path());
    // The host wrote another chip's VCEK where this one's is kept.
    store.write(&g.doc, &vcek_der("ms-genoa-vcek.pem")).unwrap();
    let c = client(&[kds.url()], Some(dir.path()), Arc::new(Counts::default()));
    assert!(c.fetch(&g.doc, accept(&g)).await.is_ok());
    assert_eq!(kds.requests(&g.doc.url_path), 1);
    assert_eq!(
        store.read(&g.doc).unwrap().unwrap(),
        vcek_der("ms-milan-vcek.pem")
    );
    // With nothing configured and an empty store, the error says so.
    let none = client(&[], None, Arc::new(Counts::default()));
    let err = none.fetch(&g.doc, accept(&g)).await.unwrap_err();
    assert!(
        err.to_string().contains("no KDS URL is configured"),
        "{err}"
    );
}

#[tokio::test]
async fn a_document_no_kds_has_is_not_asked_for_again_at_once() {
    let kds = KdsStandIn::start().await;
    let g = milan();
    let c = client(&[kds.url()], None, Arc::new(Counts::default()));
    for _ in 0..5 {
        let err = c.fetch(&g.doc, accept(&g)).await.unwrap_err();
        assert!(matches!(err, FetchError::Unavailable { .. }), "{err}");
    }
    // A chip the KDS does not know (e.g. named by a forged report, whose signature cannot be
    // checked before its VCEK is there) costs it one request per TTL, not one per report.
    assert_eq!(kds.requests(&g.doc.url_path), 1);
}

#[tokio::test]
async fn a_copy_the_caller_cannot_use_is_neither_kept_nor_asked_for_elsewhere() {
    let first = KdsStandIn::start().await;
    let second = KdsStandIn::start().await;
    let g = milan();
    first.serve(&g.doc.url_path, vcek_der("ms-milan-vcek.pem"));
    second.serve(&g.doc.url_path, vcek_der("ms-milan-vcek.pem"));
    let dir = tempfile::tempdir().unwrap();
    let c = client(
        &[first.url(), second.url()],
        Some(dir.path()),
        Arc::new(Counts::default()),
    );
    // As the node's check does for a report whose signature the genuine VCEK does not verify.
    let err = c
        .fetch(&g.doc, |_: &[u8]| -> Result<(), Rejection<VerifyError>> {
            Err(Rejection::Caller(SignatureError::Invalid.into()))
        })
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Unusable { .. }), "{err}");
    assert!(!dir.path().join(&g.doc.store_path).exists());
    assert_eq!(first.requests(&g.doc.url_path), 1);
    assert_eq!(second.requests(&g.doc.url_path), 0);
    // Asked again (another forged report naming the same chip), the KDS is not asked again.
    let again = c
        .fetch(&g.doc, |_: &[u8]| -> Result<(), Rejection<VerifyError>> {
            Err(Rejection::Caller(SignatureError::Invalid.into()))
        })
        .await;
    assert!(matches!(again, Err(FetchError::Unusable { .. })));
    assert_eq!(first.requests(&g.doc.url_path), 1);
}

#[tokio::test]
async fn a_stored_copy_refused_for_the_callers_reasons_stays_in_the_store() {
    let g = milan();
    let dir = tempfile::tempdir().unwrap();
    let store = CertStore::new(dir.path());
    store.write(&g.doc, &vcek_der("ms-milan-vcek.pem")).unwrap();
    // A caller whose clock is past the VCEK's validity refuses it, and no URL is configured.
    let c = client(&[], Some(dir.path()), Arc::new(Counts::default()));
    let late = |der: &[u8]| -> Result<VerifiedVcek, Rejection<VerifyError>> {
        let certs =
            CertificateBundle::from_endorsement(der).map_err(|e| Rejection::Document(e.into()))?;
        g.verifier
            .verify_chain(
                &certs,
                Endorser::Vcek,
                Some(g.id.product),
                UnixTime(4_000_000_000),
            )
            .map_err(Rejection::Document)
    };
    assert!(c.fetch(&g.doc, late).await.is_err());
    assert!(
        store.read(&g.doc).unwrap().is_some(),
        "the store keeps it for other callers"
    );
    assert!(c.fetch(&g.doc, accept(&g)).await.is_ok());
}

#[tokio::test]
async fn a_cancelled_fetch_leaves_nothing_behind_and_a_slow_kds_meets_the_deadline() {
    // A server that accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let _hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let g = milan();
    let mut settings = KdsSettings::new(vec![RpcEndpoint::new(&url).unwrap()]);
    settings.timeout = Duration::from_secs(60);
    settings.deadline = Duration::from_millis(300);
    let c = KdsClient::new(settings, None, Arc::new(Counts::default())).unwrap();
    // Cancelled while it waits for the server: the in-flight entry goes with it.
    let cancelled =
        tokio::time::timeout(Duration::from_millis(50), c.fetch(&g.doc, accept(&g))).await;
    assert!(cancelled.is_err());
    assert_eq!(c.in_flight(), 0);
    // Left to run, it gives up at the deadline with a clear error.
    let err = c.fetch(&g.doc, accept(&g)).await.unwrap_err();
    assert!(err.to_string().contains("no answer within"), "{err}");
    assert_eq!(c.in_flight(), 0);
}

#[tokio::test]
async fn the_store_is_never_written_through_a_symbolic_link() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let g = milan();
    std::fs::create_dir_all(dir.path().join("vcek")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("vcek/Milan")).unwrap();
    let store = CertStore::new(dir.path());
    assert!(store.write(&g.doc, b"x").is_err());
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}
