//! `snpkms bench --audit-log-records N`: how long a node takes to open a key-release log of N
//! records (what a node start waits for), and how long the background check of its history
//! takes (what it does meanwhile). The log is written as a node writes it (a signed head every
//! few records) but without a sync per batch, so ten million records take minutes, not days.

use anyhow::Context;
use snpkms_kms_node::audit_log::{self, AuditLog, History, NewRecord, RecordKind};
use std::path::Path;
use std::time::{Duration, Instant};

/// Records per signed head: what `snpkms bench` measures under load (records per disk sync).
const PER_HEAD: u64 = 6;

fn record(i: u64) -> NewRecord {
    let b = |n: u64| (i.wrapping_mul(n) >> 3) as u8;
    NewRecord {
        time: 1_780_000_000 + i / 1000,
        kind: RecordKind::AppKey,
        app_id: [b(3); 20],
        compose_hash: [b(5); 32],
        chip_id_hash: [b(7); 32],
        measurement: [b(11); 48],
        epoch: 0,
        block_number: 1_000 + i / 4000,
        block_hash: [b(13); 32],
        allowed: true,
        reason: String::new(),
        share: None,
        app_signing_address: None,
    }
}

pub fn run(records: u64, dir: &Path, json: bool) -> anyhow::Result<std::process::ExitCode> {
    let data_dir = dir.join("audit-log");
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)
            .with_context(|| format!("wiping {}", data_dir.display()))?;
    }
    std::fs::create_dir_all(&data_dir)?;
    audit_log::create(&data_dir)?;
    let root = k256::ecdsa::SigningKey::from_slice(&[9u8; 32]).context("fixed key")?;
    eprintln!("[bench] writing {records} records (a signed head every {PER_HEAD})");
    let t = Instant::now();
    audit_log::write_synthetic(&data_dir, &root, records, PER_HEAD, record)?;
    let written = t.elapsed();
    let bytes = std::fs::metadata(audit_log::log_path(&data_dir))?.len();

    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let t = Instant::now();
    let log = AuditLog::open(&data_dir, root, Duration::from_micros(2000))?;
    let opened = t.elapsed();
    anyhow::ensure!(
        log.len() == records,
        "opened with {} records, wrote {records}",
        log.len()
    );
    let checked = loop {
        match log.history() {
            History::Checking => std::thread::sleep(Duration::from_millis(5)),
            History::Intact { records: n } => break n,
            History::Broken(why) => anyhow::bail!("the history check failed: {why}"),
        }
    };
    let history = t.elapsed();
    runtime.block_on(log.close());
    anyhow::ensure!(checked == records, "checked {checked} of {records} records");

    let results = serde_json::json!({
        "records": records,
        "records_per_head": PER_HEAD,
        "file_bytes": bytes,
        "write_seconds": written.as_secs_f64(),
        "open_ms": opened.as_secs_f64() * 1000.0,
        "history_check_seconds": history.as_secs_f64(),
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        println!(
            "key-release log of {} records ({}): opened in {}; its history checked in the background in {:.1} s (written in {:.1} s)",
            super::human::count(records as f64),
            super::human::kib(bytes as f64 / 1024.0),
            super::human::ms(opened.as_secs_f64() * 1000.0),
            history.as_secs_f64(),
            written.as_secs_f64()
        );
    }
    std::fs::remove_dir_all(&data_dir).ok();
    Ok(std::process::ExitCode::SUCCESS)
}
