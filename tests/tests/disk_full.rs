//! The data dir fills up: requests fail cleanly (no key without its log record) and the node
//! keeps answering; once there is room again it serves the same keys without a restart, and its
//! audit chain is intact, holding no record of a refused request.
//! Uses a small tmpfs (the tests run as root, as CI does).

use snpkms_e2e::*;
use snpkms_guest::GuestClientError;
use std::process::Command;
use tonic::Code;

struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(
            st.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        Tmpfs(path.to_path_buf())
    }
    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn disk_full_fails_requests_cleanly_and_recovers() {
    let mut stack = Stack::start().await;
    stack.stop_node().await;
    // Move the node's data (store and key-release log) onto a small filesystem.
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("data");
    let fs = Tmpfs::mount(&mnt, "64m");
    let copy = Command::new("cp")
        .arg("-a")
        .arg(stack.config.data_dir.join("store"))
        .arg(stack.config.data_dir.join("audit.log"))
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(copy.success());
    stack.config.data_dir = mnt.clone();
    stack.start_node().await;
    let app = stack.app();
    let g = guest(app, stack.compose_hash);
    let mut client = stack.client().await;
    let before = client
        .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
        .await
        .expect("serves");

    // Fill the filesystem to the brim.
    let used = String::from_utf8(
        Command::new("du")
            .args(["-sm"])
            .arg(&mnt)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let used_mb: u64 = used.split_whitespace().next().unwrap().parse().unwrap();
    fs.resize(&format!("{}m", used_mb + 1));
    let _ = std::fs::write(mnt.join("filler"), vec![0u8; 8 << 20]);

    let mut refused = 0;
    let mut served_while_full = 0;
    for _ in 0..400 {
        match client
            .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
            .await
        {
            Ok(_) => served_while_full += 1,
            Err(GuestClientError::Refused { code, message }) => {
                assert_eq!(code, Code::Internal, "{message}");
                assert!(
                    message.contains("storage") || message.contains("disk"),
                    "{message}"
                );
                refused += 1;
                if refused >= 3 {
                    break;
                }
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        refused >= 3,
        "never refused ({served_while_full} served) on a full disk"
    );

    // Room again: the same node serves again (same keys), without a restart.
    std::fs::remove_file(mnt.join("filler")).ok();
    fs.resize("64m");
    let after = client
        .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
        .await
        .expect("serves again once there is room");
    assert_eq!(*after.disk_key, *before.disk_key);

    // One record per key served, none for the refused requests, and an intact chain.
    stack.stop_node().await;
    let log = snpkms_kms_node::read_audit_log(&stack.config).expect("intact chain");
    assert_eq!(log.torn_tail_bytes, 0);
    assert_eq!(log.records.len(), 2 + served_while_full);
    assert!(log.records.iter().all(|r| r.decision == "allowed"));
}
