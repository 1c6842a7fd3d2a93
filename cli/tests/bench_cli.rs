//! `snpkms bench` runs end to end on a small load and reports what BENCHMARKS.md reads from it:
//! each library's bare verify rate, the ratios to the fastest and to the node's library, the
//! node's CPU per request split into verification and the rest, the client's CPU, all in the
//! JSON and, formatted for people, in the text; and the many-apps and fleet phases, small. (Its numbers are not judged here: speed is for
//! the benchmark to measure, not for a timed test.)

use std::process::Command;

fn bench(dir: &std::path::Path, json: bool) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_snpkms"));
    cmd.args([
        "bench",
        "--requests",
        "200",
        "--latency-requests",
        "20",
        "--concurrency",
        "8",
    ])
    .args(["--verify-seconds", "0.2", "--no-revocation", "--dir"])
    .arg(dir)
    .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    if json {
        // The many-apps and fleet phases too, small.
        cmd.args(["--json", "--apps", "3", "--fleet", "4"]);
    }
    let out = cmd.output().expect("run snpkms bench");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "snpkms bench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn bench_reports_every_library_the_ratios_and_the_cpu_split() {
    let dir = tempfile::tempdir().unwrap();
    let results: serde_json::Value =
        serde_json::from_str(&bench(&dir.path().join("json"), true)).unwrap();
    let verify = &results["bare_verify"];
    assert_eq!(verify["node_library"], "aws-lc-rs");
    let libraries: Vec<&str> = (verify["per_library"]["mean"].as_array().unwrap().iter())
        .map(|r| {
            assert!(r["per_sec"].as_f64().unwrap() > 0.0, "{r}");
            r["library"].as_str().unwrap()
        })
        .collect();
    assert_eq!(libraries, ["aws-lc-rs", "ring", "rust-crypto"]);
    let throughput = &results["throughput"];
    assert_eq!(throughput["errors"], 0);
    assert_eq!(throughput["requests"], 200);
    let number = |key: &str| throughput[key].as_f64().unwrap_or_else(|| panic!("{key}"));
    assert!(number("ratio_to_fastest_verify") <= number("ratio_to_node_library_verify"));
    let split =
        number("server_cpu_ms_per_request_verification") + number("server_cpu_ms_per_request_rest");
    assert!((split - number("server_cpu_ms_per_request")).abs() < 1e-9);
    assert!(number("client_cpu_ms_per_request") > 0.0);
    let apps = &results["many_apps"];
    assert_eq!(apps["apps"], 3);
    assert_eq!(
        (apps["warmup_errors"].as_u64(), apps["errors"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(apps["cold_eth_calls"].as_f64().unwrap() >= 1.0, "{apps}");
    let fleet = &results["fleet"];
    assert_eq!(fleet["machines"], 4);
    assert_eq!(fleet["boot"]["requests"], 4);
    assert_eq!(fleet["boot"]["errors"], 0);
    assert_eq!(fleet["steady"]["errors"], 0);
    assert!(fleet["steady"]["get_app_key_per_sec"].as_f64().unwrap() > 0.0);

    let text = bench(&dir.path().join("text"), false);
    for needle in [
        "aws-lc-rs",
        "ring",
        "RustCrypto p384",
        "the node's",
        "x the fastest verify",
        "node CPU per request",
        "MiB",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // Formatted for people: no float printed with all its digits, no raw kB counts.
    assert!(!text.contains(" kB"), "{text}");
    assert!(
        !text
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .any(|n| n.contains('.') && n.len() > 12),
        "an unformatted float in:\n{text}"
    );
}
