//! Target `get_app_key_request`: the bytes of a GetAppKey call as the node decodes them, then
//! the node's stateless steps before the chain: field lengths, evidence verification through
//! the node's chain cache, the report_data binding and `BootInfo::for_app`. (The nonce store,
//! the epoch check and everything after the chain need node state and are not run here.)
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/get_app_key_request.rs`) and the `cargo test`
//! replay of committed inputs (`core/tests/fuzz_regressions.rs`) with `#[path]`.

use prost::Message;
use snpkms_api::pb;
use snpkms_core::{validate_request, EvidenceVerifier, ReleaseError};
use snpkms_verifier::{Policy, TrustRoots, UnixTime, Verifier};
use std::sync::OnceLock;

/// 2026-06-01: inside the validity of the simulator's VCEKs.
pub const AT: UnixTime = UnixTime(1_780_272_000);

/// As a node configured with `trust.simulator_root` (the dev stack): AMD roots plus the
/// simulator's, so simulated seeds verify and their mutations reach every check.
pub fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let mut roots = TrustRoots::amd();
        snpkms_simulator::trust_simulator_root(&mut roots).expect("simulator root");
        Verifier::new(roots, Policy::default())
    })
}

/// `Ok` when the request passes every stateless step; `Err` says where it stopped. Panics only
/// on a broken invariant.
pub fn run(data: &[u8]) -> Result<(), String> {
    let req = pb::GetAppKeyRequest::decode(data).map_err(|e| format!("decode: {e}"))?;
    let request = validate_request(&req).map_err(|e| e.to_string())?;
    let evidence = req
        .evidence
        .as_ref()
        .ok_or_else(|| "evidence is missing".to_string())?;

    // A fresh cache per input, so a crash reproduces from its input alone. Verifying twice runs
    // the cache-miss path and then, after a success, the cache-hit path: both must agree, or
    // the cache would let through what the full check refuses.
    let evidence_verifier = EvidenceVerifier::new(verifier().clone(), 1);
    let first = evidence_verifier.verify(&evidence.report, &evidence.cert_table, AT);
    let second = evidence_verifier.verify(&evidence.report, &evidence.cert_table, AT);
    assert_eq!(first, second, "the chain cache changed the verdict");

    let report = first.map_err(|e| ReleaseError::from(e).to_string())?;
    let boot = request.boot_info(&report).map_err(|e| e.to_string())?;
    assert_eq!(
        (boot.app_id, boot.compose_hash),
        (request.app_id, request.compose_hash),
        "BootInfo names another app than the request"
    );
    Ok(())
}
