//! The node process under faults: SIGKILL while it writes its key-release log, and a damaged
//! store. It restarts with the same root and an intact hash chain, and never makes a new root.

use snpkms_e2e::{guest, Stack};
use snpkms_guest::GuestClient;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Starts `snpkms node run` and returns it with its gRPC URL, from the readiness line it
/// prints on stdout.
fn spawn_node(config: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_snpkms"))
        .args(["node", "run", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = snpkms_local::wait_ready(child.stdout.take().unwrap())
        .expect("node exited before it was ready");
    (child, format!("http://{}", ready.grpc))
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_audit_writes_keeps_root_and_chain() {
    let mut stack = Stack::start().await;
    stack.stop_node().await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("node.toml");
    let mut cfg = stack.config.clone();
    cfg.metrics_listen = None;
    std::fs::write(&config_path, cfg.to_toml().unwrap()).unwrap();
    let app = stack.app();
    let compose = stack.compose_hash;
    let root = stack.root;

    let (mut child, url) = spawn_node(&config_path);
    let mut first = GuestClient::connect(&url).await.unwrap();
    let g = guest(app, compose);
    let mut reference = None;
    for _ in 0..100 {
        match first.get_app_key(&g, app.0 .0, compose, None, root).await {
            Ok(k) => {
                reference = Some(k);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let reference = reference.expect("the node serves");

    // Eight guests hammer the node; it is killed mid-stream.
    let mut load = Vec::new();
    for _ in 0..8 {
        let url = url.clone();
        load.push(tokio::spawn(async move {
            let g = guest(app, compose);
            let Ok(mut c) = GuestClient::connect(&url).await else {
                return 0;
            };
            let mut ok = 0;
            while c
                .get_app_key(&g, app.0 .0, compose, None, root)
                .await
                .is_ok()
            {
                ok += 1;
            }
            ok
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let mut served = 0;
    for l in load {
        served += l.await.unwrap();
    }
    assert!(served > 0, "the load ran before the kill");

    // The log survived with its chain, and holds at least every release a guest received.
    let out = Command::new(env!("CARGO_BIN_EXE_snpkms"))
        .args(["node", "audit-log", "--json", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        records.len() > served,
        "{} records for {} releases",
        records.len(),
        served + 1
    );

    // Restart: same root, same keys, and the chain goes on.
    let (mut child, url) = spawn_node(&config_path);
    let mut again = None;
    for _ in 0..100 {
        if let Ok(mut c) = GuestClient::connect(&url).await {
            if let Ok(k) = c.get_app_key(&g, app.0 .0, compose, None, root).await {
                again = Some(k);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let again = again.expect("serves after the restart");
    assert_eq!(*again.disk_key, *reference.disk_key);
    assert_eq!(
        again.kms_root_signing_address,
        reference.kms_root_signing_address
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let log = snpkms_kms_node::read_audit_log(&cfg).expect("chain intact after two kills");
    assert!(log.records.len() > served + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_store_stops_the_node_and_no_root_is_made() {
    let mut stack = Stack::start().await;
    stack.stop_node().await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("node.toml");
    std::fs::write(&config_path, stack.config.to_toml().unwrap()).unwrap();
    let store = stack.config.data_dir.join("store");
    let log = stack.config.data_dir.join("audit.log");

    // The node's stderr from a start that must fail.
    let failed_start = || {
        let out = Command::new(env!("CARGO_BIN_EXE_snpkms"))
            .args(["node", "run", "--config"])
            .arg(&config_path)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    // A store without its key-release log: refused, and no new log is made.
    let saved_log = std::fs::read(&log).unwrap();
    std::fs::remove_file(&log).unwrap();
    let err = failed_start();
    assert!(err.contains("no key-release log"), "{err}");
    assert!(!log.exists(), "a failed start must not create a log");
    std::fs::write(&log, saved_log).unwrap();

    // Damage every data file of the store.
    for entry in std::fs::read_dir(&store).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let len = std::fs::metadata(&path).unwrap().len() as usize;
            std::fs::write(&path, vec![0xA5u8; len.max(64)]).unwrap();
        }
    }
    let err = failed_start();
    assert!(err.contains("store"), "{err}");

    // Missing store: refused with the way out named.
    std::fs::remove_dir_all(&store).unwrap();
    let err = failed_start();
    assert!(err.contains("snpkms node bootstrap"), "{err}");
    assert!(!store.exists(), "a failed start must not create a store");
}
