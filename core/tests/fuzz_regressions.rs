//! Replays every committed input of the `get_app_key_request` fuzz target
//! (`fuzz/seeds/get_app_key_request/`: the seed corpus, plus every input that ever crashed the
//! target) through the same harness the fuzzer runs, so a fixed crash stays fixed under plain
//! `cargo test`. Files named `ok-*` must pass every stateless step of GetAppKey.
//!
//! `cargo test -p snpkms-core --test fuzz_regressions -- --ignored` rewrites the seeds.

#[path = "../../fuzz/harness/get_app_key_request.rs"]
mod get_app_key_request;
#[path = "../../fuzz/harness/replay.rs"]
mod replay;

use prost::Message;
use snpkms_api::{binding, pb};
use snpkms_simulator::{GuestLaunch, SimAuthority, SimulatedGuest, SimulatedPlatform};
use snpkms_verifier::{app_host_data, Product};
use std::path::PathBuf;
use std::sync::Arc;

const TARGET: &str = "get_app_key_request";

fn seeds_dir() -> PathBuf {
    replay::seeds_dir(env!("CARGO_MANIFEST_DIR"), TARGET)
}

#[test]
fn get_app_key_request_inputs_never_panic() {
    replay::replay(env!("CARGO_MANIFEST_DIR"), TARGET, get_app_key_request::run);
}

/// Writes the seed corpus: for every product a request that passes every stateless step, and
/// requests that stop at each later step (evidence missing, report_data, host_data), so that
/// mutations start next to every branch.
#[test]
#[ignore = "writes fuzz/seeds; run by hand when the request format changes"]
fn write_seeds() {
    let dir = seeds_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, req: &pb::GetAppKeyRequest| {
        std::fs::write(dir.join(name), req.encode_to_vec()).unwrap();
    };

    let app_id = [0xA1; 20];
    let compose_hash = [0xC0; 32];
    let nonce = [0x4E; 32];
    let ephemeral = [0xE5; 32];
    let authority = Arc::new(SimAuthority::load());
    for product in Product::ALL {
        let platform = SimulatedPlatform::new(authority.clone(), product, b"fuzz-seed");
        let guest = SimulatedGuest::new(
            Arc::new(platform),
            GuestLaunch {
                host_data: app_host_data(&app_id, &compose_hash),
                ..GuestLaunch::default()
            },
        );
        let evidence =
            guest.extended_report(binding::get_app_key_report_data(&nonce, &ephemeral), 0);
        let request = pb::GetAppKeyRequest {
            evidence: Some(pb::Evidence {
                report: evidence.report,
                cert_table: evidence.cert_table,
            }),
            nonce: nonce.to_vec(),
            app_id: app_id.to_vec(),
            compose_hash: compose_hash.to_vec(),
            ephemeral_public_key: ephemeral.to_vec(),
            epoch: Some(1),
        };
        let name = product.amd_name().to_lowercase();
        write(&format!("ok-sim-{name}"), &request);
        if product != Product::Milan {
            continue;
        }
        let nonce_changed = pb::GetAppKeyRequest {
            nonce: vec![0x4F; 32],
            ..request.clone()
        };
        write("report-data-mismatch", &nonce_changed);
        let compose_changed = pb::GetAppKeyRequest {
            compose_hash: vec![0xC1; 32],
            ..request.clone()
        };
        write("host-data-mismatch", &compose_changed);
        let no_evidence = pb::GetAppKeyRequest {
            evidence: None,
            ..request
        };
        write("no-evidence", &no_evidence);
    }
}
