//! Target `cert_table`: the host-written certificate table of an extended report, and the
//! certificate and CRL decoders behind it.
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/cert_table.rs`) and the `cargo test` replay
//! of committed inputs (`verifier/tests/fuzz_regressions.rs`) with `#[path]`.

use snpkms_verifier::cert_table::{self, MAX_ENTRIES, MAX_ENTRY_LEN};
use snpkms_verifier::{CertificateBundle, Crl};

/// `Ok` when `data` parses as a certificate table; `Err` says why not. Panics only on a broken
/// invariant.
pub fn run(data: &[u8]) -> Result<(), String> {
    // The same bytes as a lone certificate (DER or PEM, as `snpkms verify --vcek` takes them),
    // as an ASK+ARK PEM chain and as a CRL: operator- or network-supplied certificate formats.
    let _ = CertificateBundle::from_vcek(data);
    let _ = CertificateBundle::default().with_chain_pem(data);
    if let Ok(crl) = Crl::from_der(data) {
        let _ = crl.issuer_common_name();
        let _ = crl.is_revoked(&[1]);
    }

    let entries = cert_table::parse(data).map_err(|e| e.to_string())?;
    // The bounds the parser promises, which keep a hostile host from making us allocate much.
    assert!(entries.len() <= MAX_ENTRIES, "{} entries", entries.len());
    for e in &entries {
        assert!(!e.data.is_empty() && e.data.len() <= MAX_ENTRY_LEN);
    }
    // What parses re-encodes to a table that parses to the same entries.
    let again = cert_table::parse(&cert_table::encode(&entries))
        .unwrap_or_else(|e| panic!("a re-encoded table does not parse: {e}"));
    assert_eq!(
        again, entries,
        "encode/parse round trip changed the entries"
    );

    let bundle = CertificateBundle::from_cert_table(data).map_err(|e| e.to_string())?;
    for der in [&bundle.vcek, &bundle.vlek, &bundle.ask, &bundle.ark]
        .into_iter()
        .flatten()
    {
        let _ = CertificateBundle::from_vcek(der);
    }
    let round_trip = CertificateBundle::from_cert_table(&bundle.to_cert_table())
        .unwrap_or_else(|e| panic!("a bundle's own table does not parse: {e}"));
    assert_eq!(
        round_trip, bundle,
        "bundle/table round trip changed the bundle"
    );
    Ok(())
}
