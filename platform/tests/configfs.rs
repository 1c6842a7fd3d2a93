//! The configfs-tsm evidence path against a fake tree in a temp dir that behaves like the
//! kernel's: a new report entry gets its attributes, `outblob` is produced when read from the
//! `inblob` written before it (a FIFO served by a "kernel" thread, signing with the SNP
//! simulator), `generation` counts writes, and attribute files vanish with the entry.

use snpkms_platform::hardware::ConfigFsTsm;
use snpkms_platform::Attestor;
use snpkms_simulator::{GuestLaunch, SimAuthority, SimulatedGuest, SimulatedPlatform};
use snpkms_verifier::{CertificateBundle, Policy, Product, TrustRoots, UnixTime, Verifier};
use std::ffi::CString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo does not retain it.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo {}", path.display());
}

fn write_fifo(path: &Path, data: &[u8], then_unlink: &[PathBuf]) {
    // Blocks until the reader opens the FIFO, like a read of the real attribute.
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    for p in then_unlink {
        let _ = std::fs::remove_file(p);
    }
    f.write_all(data).unwrap();
}

/// The "kernel": waits for one report entry under `base` and serves it.
fn fake_kernel(base: PathBuf, provider: &'static str, generations: [&'static str; 2]) {
    let guest = SimulatedGuest::new(
        Arc::new(SimulatedPlatform::new(
            Arc::new(SimAuthority::load()),
            Product::Genoa,
            b"configfs-chip",
        )),
        GuestLaunch {
            measurement: [0x42; 48],
            ..GuestLaunch::default()
        },
    );
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let entry = loop {
            if let Some(e) = std::fs::read_dir(&base).unwrap().flatten().next() {
                break e.path();
            }
            assert!(Instant::now() < deadline, "no report entry was created");
            std::thread::sleep(Duration::from_millis(1));
        };
        let f = |n: &str| entry.join(n);
        mkfifo(&f("generation"));
        mkfifo(&f("outblob"));
        std::fs::write(f("provider"), format!("{provider}\n")).unwrap();
        write_fifo(&f("generation"), generations[0].as_bytes(), &[]);
        // outblob is generated from the inblob written before it is read.
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .open(f("outblob"))
            .unwrap();
        let inblob: [u8; 64] = std::fs::read(f("inblob")).unwrap().try_into().unwrap();
        let evidence = guest.extended_report(inblob, 0);
        std::fs::write(f("auxblob"), &evidence.cert_table).unwrap();
        out.write_all(&evidence.report).unwrap();
        drop(out);
        // Reading generation again; the attributes go away with the entry.
        let all: Vec<PathBuf> = [
            "provider",
            "privlevel",
            "inblob",
            "outblob",
            "auxblob",
            "generation",
        ]
        .iter()
        .map(|n| f(n))
        .collect();
        write_fifo(&f("generation"), generations[1].as_bytes(), &all);
    });
}

fn sim_verifier() -> Verifier {
    let mut roots = TrustRoots::amd();
    snpkms_simulator::trust_simulator_root(&mut roots).unwrap();
    Verifier::new(roots, Policy::default())
}

#[test]
fn attests_through_the_configfs_tree() {
    let base = tempfile::tempdir().unwrap();
    fake_kernel(base.path().to_path_buf(), "sev_guest", ["1\n", "1\n"]);
    let evidence = ConfigFsTsm::new(base.path()).attest([0x5a; 64]).unwrap();
    let certs = CertificateBundle::from_cert_table(&evidence.cert_table).unwrap();
    let now = UnixTime(1_780_272_000);
    let report = sim_verifier()
        .verify(&evidence.report, &certs, now)
        .unwrap();
    assert_eq!(report.report_data, [0x5a; 64]);
    assert_eq!(report.measurement, [0x42; 48]);
    assert_eq!(report.product, Product::Genoa);
    // The entry is gone.
    assert_eq!(std::fs::read_dir(base.path()).unwrap().count(), 0);
}

#[test]
fn a_concurrent_writer_is_detected() {
    let base = tempfile::tempdir().unwrap();
    fake_kernel(base.path().to_path_buf(), "sev_guest", ["1\n", "2\n"]);
    let err = ConfigFsTsm::new(base.path())
        .attest([1; 64])
        .expect_err("refused");
    assert!(
        err.to_string().contains("changed while being read"),
        "{err}"
    );
}

#[test]
fn another_tsm_provider_is_refused() {
    let base = tempfile::tempdir().unwrap();
    let entry_watch = base.path().to_path_buf();
    // A TDX guest's configfs: the provider check must stop before anything is written.
    std::thread::spawn(move || loop {
        if let Some(e) = std::fs::read_dir(&entry_watch).unwrap().flatten().next() {
            std::fs::write(e.path().join("provider"), "tdx_guest\n").unwrap();
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    });
    let err = ConfigFsTsm::new(base.path())
        .attest([1; 64])
        .expect_err("refused");
    assert!(
        err.to_string().contains("not the SEV-SNP guest driver"),
        "{err}"
    );
}

#[test]
fn a_missing_tree_is_a_clear_error() {
    let err = ConfigFsTsm::new("/nonexistent/tsm/report")
        .attest([0; 64])
        .expect_err("refused");
    assert!(
        err.to_string().contains("creating /nonexistent/tsm/report"),
        "{err}"
    );
}
