//! `snpkms bench`: GetAppKey throughput and latency against a real node process, beside the bare
//! P-384 verification rate of each library on the same machine ([`verify_rates`]).
//!
//! Evidence is pre-generated: challenges are fetched and simulated reports signed *before* the
//! timed phase, so the simulator's signing (client work, as costly as a verification) does not
//! eat the server's CPU budget. The timed phase only sends requests; the node does everything
//! it does for a real guest (verify, bind, authorize, derive, seal, durable audit record).

mod fleet;
mod human;
mod log_open;
mod verify_rates;

use crate::stack::{LocalStack, StackOptions};
use anyhow::{bail, Context};
use snpkms_api::pb;
use snpkms_api::pb::kms_client::KmsClient;
use snpkms_api::{binding, seal::EphemeralKeyPair};
use snpkms_kms_node::config::Limits;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use verify_rates::{Library, VerifyRates};

#[derive(clap::Args)]
pub struct Args {
    /// Concurrent simulated guests in the throughput phase.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Requests in the throughput phase (each with its own challenge and report); also the batch
    /// size (at most 10000) with `--seconds`.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Run the throughput phase for this many seconds of load instead of a number of requests
    /// (evidence preparation between batches is not counted).
    #[arg(long)]
    seconds: Option<f64>,
    /// Requests in the concurrency-1 latency phase.
    #[arg(long, default_value_t = 1_000)]
    latency_requests: usize,
    /// Where the stack keeps its state (wiped at start).
    #[arg(long, default_value = ".bench")]
    dir: PathBuf,
    #[arg(long, env = "SNPKMS_ANVIL")]
    anvil: Option<PathBuf>,
    /// Confirmations the node reads at (anvil mines one block per second).
    #[arg(long, default_value_t = 1)]
    confirmations: u64,
    /// Skip the revocation measurement.
    #[arg(long)]
    no_revocation: bool,
    /// Seconds each library's bare verify rate is measured for, before and after the load.
    #[arg(long, default_value_t = 2.0)]
    verify_seconds: f64,
    /// After the one-app load: register this many apps in all (like the demo app), warm each
    /// one up (cold authorization: one chain read each) and run the same load spread over
    /// them, to compare with the one-app rate.
    #[arg(long, default_value_t = 1)]
    apps: usize,
    /// After the one-app load: this many machines booting at once, each its own simulated chip
    /// with its own connection from its own loopback address; `--requests` are spread over
    /// them (each machine's first request, the boot, measured apart).
    #[arg(long, value_name = "MACHINES")]
    fleet: Option<usize>,
    /// Instead of the load: how long a node takes to open a key-release log of this many
    /// records, and to check its history in the background.
    #[arg(long, value_name = "RECORDS")]
    audit_log_records: Option<u64>,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

/// Most challenges outstanding at once in the throughput phase.
const BATCH: usize = 10_000;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(records) = args.audit_log_records {
        return log_open::run(records, &args.dir, args.json);
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(bench(args))
}

/// Pre-generated evidence for one request.
struct Prepared {
    app: [u8; 20],
    nonce: Vec<u8>,
    ephemeral: [u8; 32],
    report: Vec<u8>,
}

#[derive(Debug, Default, serde::Serialize)]
struct Latency {
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn percentiles(mut micros: Vec<u64>) -> Latency {
    if micros.is_empty() {
        return Latency::default();
    }
    micros.sort_unstable();
    let at =
        |q: f64| micros[((micros.len() as f64 * q) as usize).min(micros.len() - 1)] as f64 / 1000.0;
    Latency {
        p50_ms: at(0.50),
        p95_ms: at(0.95),
        p99_ms: at(0.99),
        max_ms: *micros.last().unwrap_or(&0) as f64 / 1000.0,
    }
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // Clock ticks: USER_HZ is 100 on Linux for every architecture we run on.
    (ticks(11) + ticks(12)) / 100.0
}

/// A process's resident memory, in kB.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    /// Everything resident (VmRSS).
    rss: u64,
    /// Its high-water mark (VmHWM).
    peak: u64,
    /// Anonymous memory only (RssAnon: heap and stacks): the part a leak would grow. The rest
    /// is mostly the executable's own pages, read in as code runs for the first time.
    anon: u64,
}

fn memory_kb(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some(Memory {
        rss: field("VmRSS:")?,
        peak: field("VmHWM:")?,
        anon: field("RssAnon:")?,
    })
}

/// Growth over the run: the mean of the last fifth of the samples against the mean of the fifth
/// that follows warm-up (10% to 30% in). Means over windows, because the node hands free pages
/// back every few seconds and single samples land before or after that at random.
fn growth(start: u64, samples: &[u64], end: u64) -> serde_json::Value {
    let mean = |w: &[u64]| match w.len() {
        0 => start as f64,
        n => w.iter().sum::<u64>() as f64 / n as f64,
    };
    let n = samples.len();
    let after_warmup = mean(&samples[n / 10..(n * 3 / 10).max(n / 10)]);
    let last = mean(&samples[n * 4 / 5..]);
    serde_json::json!({
        "before_load": start,
        "after_warmup": after_warmup.round(),
        "last_fifth": last.round(),
        "end": end,
        "growth_after_warmup_pct": (last - after_warmup) / after_warmup.max(1.0) * 100.0,
        "samples_every_500ms": samples,
    })
}

/// One sample of the node's metrics (the Prometheus exposition, fetched over HTTP).
async fn metric(metrics_addr: &str, name: &str) -> f64 {
    let Ok(body) = snpkms_local::scrape(metrics_addr).await else {
        return f64::NAN;
    };
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// A registered app and a guest of it.
type AppGuest = ([u8; 20], Arc<snpkms_platform::SimulatedAttestor>);

/// `n` requests' evidence, the i-th for `guests[i % guests.len()]`.
async fn prepare(
    client: &KmsClient<Channel>,
    guests: &[AppGuest],
    n: usize,
) -> anyhow::Result<Vec<Prepared>> {
    // Challenges, fetched concurrently.
    let mut nonces = Vec::with_capacity(n);
    let per_task = n.div_ceil(16);
    let mut tasks = Vec::new();
    for t in 0..16 {
        let mut c = client.clone();
        let count = per_task.min(n.saturating_sub(t * per_task));
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(count);
            for _ in 0..count {
                out.push(
                    c.get_challenge(pb::GetChallengeRequest {})
                        .await?
                        .into_inner()
                        .nonce,
                );
            }
            Ok::<_, tonic::Status>(out)
        }));
    }
    for t in tasks {
        nonces.extend(t.await??);
    }
    // Reports, signed on every core.
    let indexed: Vec<(usize, Vec<u8>)> = nonces.into_iter().enumerate().collect();
    let chunks: Vec<Vec<(usize, Vec<u8>)>> = indexed
        .chunks(n.div_ceil(2).max(1))
        .map(|c| c.to_vec())
        .collect();
    let guests: Arc<Vec<AppGuest>> = Arc::new(guests.to_vec());
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let guests = guests.clone();
            std::thread::spawn(move || {
                chunk
                    .into_iter()
                    .map(|(i, nonce)| {
                        let (app, guest) = &guests[i % guests.len()];
                        let ephemeral = EphemeralKeyPair::generate().public_key();
                        let data = binding::get_app_key_report_data(&nonce, &ephemeral);
                        let report = snpkms_platform::Attestor::attest(guest.as_ref(), data)
                            .expect("simulated evidence")
                            .report;
                        Prepared {
                            app: *app,
                            nonce,
                            ephemeral,
                            report,
                        }
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.extend(
            h.join()
                .map_err(|_| anyhow::anyhow!("a signing thread panicked"))?,
        );
    }
    Ok(out)
}

#[derive(Default)]
struct PhaseResult {
    ok: usize,
    errors: usize,
    first_error: Option<tonic::Status>,
    elapsed: Duration,
    latencies: Vec<u64>,
}

impl PhaseResult {
    /// Counts one answer and its latency.
    fn record(&mut self, answer: Result<(), tonic::Status>, micros: u64) {
        match answer {
            Ok(()) => self.ok += 1,
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
        self.latencies.push(micros);
    }

    /// Adds what another task counted (its elapsed time is not the phase's).
    fn merge(&mut self, other: PhaseResult) {
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies.extend(other.latencies);
    }
}

/// Sends one prepared GetAppKey request as a guest would: its answer and its latency in µs.
async fn send(
    client: &mut KmsClient<Channel>,
    p: Prepared,
    compose: &[u8],
    cert_table: &[u8],
) -> (Result<(), tonic::Status>, u64) {
    let request = pb::GetAppKeyRequest {
        evidence: Some(pb::Evidence {
            report: p.report,
            cert_table: cert_table.to_vec(),
        }),
        nonce: p.nonce,
        app_id: p.app.to_vec(),
        compose_hash: compose.to_vec(),
        ephemeral_public_key: p.ephemeral.to_vec(),
        epoch: None,
    };
    let t = Instant::now();
    let answer = client.get_app_key(request).await.map(|_| ());
    (answer, t.elapsed().as_micros() as u64)
}

async fn fire(
    client: &KmsClient<Channel>,
    stack: &LocalStack,
    cert_table: Arc<Vec<u8>>,
    prepared: Vec<Prepared>,
    concurrency: usize,
) -> PhaseResult {
    let queue = Arc::new(std::sync::Mutex::new(prepared));
    let compose = stack.compose_hash.to_vec();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let queue = queue.clone();
        let mut c = client.clone();
        let (compose, table) = (compose.clone(), cert_table.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = PhaseResult::default();
            loop {
                let Some(p) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                    break;
                };
                let (answer, micros) = send(&mut c, p, &compose, &table).await;
                mine.record(answer, micros);
            }
            mine
        }));
    }
    let mut result = PhaseResult::default();
    for t in tasks {
        if let Ok(part) = t.await {
            result.merge(part);
        }
    }
    result.elapsed = start.elapsed();
    result
}

/// The many-apps phase: its inputs.
struct ManyApps<'a> {
    client: &'a KmsClient<Channel>,
    stack: &'a LocalStack,
    table: Arc<Vec<u8>>,
    metrics_addr: &'a str,
    pid: u32,
}

impl ManyApps<'_> {
    async fn run(
        &self,
        apps: usize,
        requests: usize,
        concurrency: usize,
        one_app_rate: f64,
    ) -> anyhow::Result<serde_json::Value> {
        let (client, stack) = (self.client, self.stack);
        eprintln!("[bench] registering {} more apps", apps - 1);
        let mut guests: Vec<AppGuest> = vec![(stack.app.0 .0, Arc::new(stack.guest()))];
        for app in stack.register_apps(apps - 1, 1).await? {
            guests.push((app.0 .0, Arc::new(stack.guest_of(app))));
        }
        // Until the node's pinned view holds the last registration.
        let last = std::slice::from_ref(guests.last().context("no apps")?);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let probe = prepare(client, last, 1).await?;
            if fire(client, stack, self.table.clone(), probe, 1).await.ok == 1 {
                break;
            }
            if Instant::now() > deadline {
                bail!("the node does not serve the last registered app after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let misses = "snpkms_registry_decision_cache_misses_total";
        let (misses_0, anon_0) = (
            metric(self.metrics_addr, misses).await,
            memory_kb(self.pid).unwrap_or_default().anon,
        );
        // Warm-up: each app's first request (its decision read from the chain, its keys
        // derived and signed).
        let warm = prepare(client, &guests, guests.len()).await?;
        let warm = fire(client, stack, self.table.clone(), warm, concurrency).await;
        let (misses_1, anon_1) = (
            metric(self.metrics_addr, misses).await,
            memory_kb(self.pid).unwrap_or_default().anon,
        );
        eprintln!(
            "[bench] {apps} apps warmed up: {} chain reads, {} errors",
            misses_1 - misses_0,
            warm.errors
        );
        let load = prepare(client, &guests, requests).await?;
        let load = fire(client, stack, self.table.clone(), load, concurrency).await;
        let rate = load.ok as f64 / load.elapsed.as_secs_f64();
        Ok(serde_json::json!({
            "apps": apps,
            "warmup_errors": warm.errors,
            "cold_eth_calls": misses_1 - misses_0,
            "anon_rss_kb_per_app": (anon_1 as f64 - anon_0 as f64) / apps as f64,
            "requests": load.ok + load.errors,
            "errors": load.errors,
            "get_app_key_per_sec": rate,
            "ratio_to_one_app": rate / one_app_rate,
            "latency": percentiles(load.latencies),
        }))
    }
}

async fn bench(args: Args) -> anyhow::Result<ExitCode> {
    let limits = Limits {
        // The benchmark is one client at full speed: rate limits off, room for every nonce.
        per_client_rate: 0.0,
        per_app_rate: 0.0,
        nonce_ttl_secs: 3600,
        max_outstanding_nonces: args.requests.clamp(1, BATCH) + args.latency_requests + 10_000,
        ..Limits::default()
    };
    let stack = LocalStack::build(
        StackOptions {
            dir: args.dir.clone(),
            anvil: args.anvil.clone(),
            block_time: 1,
            read_at: args.confirmations.to_string(),
            limits,
        },
        |n, text| eprintln!("[setup {n}/6] {text}"),
    )
    .await?;

    // The node as its own process, so its memory is measured alone.
    let exe = std::env::current_exe()?;
    let mut node = tokio::process::Command::new(exe)
        .args(["node", "run", "--config"])
        .arg(&stack.config_path)
        .kill_on_drop(true)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the node")?;
    let pid = node.id().context("node pid")?;
    let stdout = std::fs::File::from(
        node.stdout
            .take()
            .context("node stdout")?
            .into_owned_fd()
            .context("node stdout")?,
    );
    // The node says where it listens on stdout, as one JSON line.
    let ready = tokio::task::spawn_blocking(move || snpkms_local::wait_ready(stdout))
        .await?
        .context("the node exited before it was ready")?;
    let url = format!("http://{}", ready.grpc);
    let metrics_addr = ready
        .metrics
        .context("the node has no metrics listener")?
        .to_string();
    let client = KmsClient::connect(url.clone()).await?;
    let table = Arc::new(snpkms_platform::Attestor::attest(&stack.guest(), [0; 64])?.cert_table);
    let demo: Vec<AppGuest> = vec![(stack.app.0 .0, Arc::new(stack.guest()))];

    // Wait until the node serves (the chain must show its KMS info at the configured depth).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let probe = prepare(&client, &demo, 1).await?;
        let r = fire(&client, &stack, table.clone(), probe, 1).await;
        if r.ok == 1 {
            break;
        }
        if Instant::now() > deadline {
            bail!("the node does not serve: {:?}", r.first_error);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("[bench] node serving at {url} (pid {pid})");

    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    // Measured before and after the load, as a shared VM's speed drifts by several percent.
    let rates_before = verify_rates::measure_all(threads, args.verify_seconds);
    for r in &rates_before {
        eprintln!(
            "[bench] bare P-384 verify, {}: {}/s on {threads} thread(s)",
            r.library.name(),
            human::count(r.per_sec)
        );
    }

    // Concurrency 1: latency.
    let prepared = prepare(&client, &demo, args.latency_requests).await?;
    let single = fire(&client, &stack, table.clone(), prepared, 1).await;
    let single_latency = percentiles(single.latencies.clone());
    eprintln!(
        "[bench] concurrency 1: {} ok, {} errors, p99 {:.2} ms",
        single.ok, single.errors, single_latency.p99_ms
    );

    // Throughput at the requested concurrency, with the server's memory sampled. Evidence is
    // prepared in batches so that outstanding challenges (node memory) stay bounded however long
    // the run: only the firing is timed and counted.
    let batch = args.requests.clamp(1, BATCH);
    let hits_before = metric(&metrics_addr, "snpkms_registry_decision_cache_hits_total").await;
    let misses_before = metric(&metrics_addr, "snpkms_registry_decision_cache_misses_total").await;
    let syncs_before = metric(&metrics_addr, "snpkms_audit_syncs_total").await;
    let records_before = metric(&metrics_addr, "snpkms_audit_records").await;
    let memory_start = memory_kb(pid).unwrap_or_default();
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while sampling.load(Ordering::Relaxed) {
                if let Some(m) = memory_kb(pid) {
                    samples.push(m);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            samples
        })
    };
    eprintln!(
        "[bench] {} at concurrency {}, in batches of {batch} (challenges and signed reports prepared before each batch)",
        match args.seconds {
            Some(secs) => format!("{secs} s of load"),
            None => format!("{} requests", args.requests),
        },
        args.concurrency
    );
    let mut load = PhaseResult {
        ok: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latencies: Vec::with_capacity(args.requests),
    };
    let (mut server_cpu, mut client_cpu) = (0.0, 0.0);
    let mut remaining = args.requests;
    loop {
        let n = match args.seconds {
            Some(secs) if load.elapsed.as_secs_f64() >= secs => break,
            Some(_) => batch,
            None if remaining == 0 => break,
            None => remaining.min(batch),
        };
        remaining = remaining.saturating_sub(n);
        let prepared = prepare(&client, &demo, n).await?;
        let (server_cpu_0, client_cpu_0) = (cpu_seconds(pid), cpu_seconds(std::process::id()));
        let part = fire(&client, &stack, table.clone(), prepared, args.concurrency).await;
        server_cpu += cpu_seconds(pid) - server_cpu_0;
        client_cpu += cpu_seconds(std::process::id()) - client_cpu_0;
        load.ok += part.ok;
        load.errors += part.errors;
        load.elapsed += part.elapsed;
        load.latencies.extend(part.latencies);
        if load.first_error.is_none() {
            load.first_error = part.first_error;
        }
    }
    sampling.store(false, Ordering::Relaxed);
    let samples = sampler.await.unwrap_or_default();
    let memory_end = memory_kb(pid).unwrap_or_default();
    let syncs = metric(&metrics_addr, "snpkms_audit_syncs_total").await - syncs_before;
    let records = metric(&metrics_addr, "snpkms_audit_records").await - records_before;
    let hits =
        metric(&metrics_addr, "snpkms_registry_decision_cache_hits_total").await - hits_before;
    let misses =
        metric(&metrics_addr, "snpkms_registry_decision_cache_misses_total").await - misses_before;
    let rps = load.ok as f64 / load.elapsed.as_secs_f64();
    let load_latency = percentiles(load.latencies.clone());
    let many_apps = match args.apps {
        0 | 1 => serde_json::Value::Null,
        apps => {
            let phase = ManyApps {
                client: &client,
                stack: &stack,
                table: table.clone(),
                metrics_addr: &metrics_addr,
                pid,
            };
            phase.run(apps, batch, args.concurrency, rps).await?
        }
    };
    let fleet = match args.fleet {
        None | Some(0) => serde_json::Value::Null,
        Some(n) => fleet::run(&stack, &url, &client, n, args.requests / n, rps, pid).await?,
    };
    let rates_after = verify_rates::measure_all(threads, args.verify_seconds);
    let rates = VerifyRates::new(&rates_before, &rates_after);
    let node_rate = rates.of(Library::NODE);
    let fastest = rates.fastest();
    let rss = growth(
        memory_start.rss,
        &samples.iter().map(|m| m.rss).collect::<Vec<_>>(),
        memory_end.rss,
    );
    let anon = growth(
        memory_start.anon,
        &samples.iter().map(|m| m.anon).collect::<Vec<_>>(),
        memory_end.anon,
    );

    // Revocation: remove the compose hash, count blocks and seconds until the node refuses.
    let mut revocation = serde_json::Value::Null;
    if !args.no_revocation {
        let removed = stack
            .app_owner
            .remove_compose_hash(stack.app, stack.compose_hash.into())
            .await?;
        let t0 = Instant::now();
        let refused_block = loop {
            let probe = prepare(&client, &demo, 1).await?;
            let r = fire(&client, &stack, table.clone(), probe, 1).await;
            // The refusal's typed details say why and at which block, not its message.
            let denied = r
                .first_error
                .as_ref()
                .and_then(tonic_types::StatusExt::get_details_error_info)
                .filter(|info| {
                    info.reason == "DENIED"
                        && info.metadata.get("registry_reason").map(String::as_str)
                            == Some("compose hash not allowed")
                });
            if let Some(info) = denied {
                break info
                    .metadata
                    .get("block_number")
                    .and_then(|n| n.parse::<u64>().ok());
            }
            if t0.elapsed() > Duration::from_secs(60) {
                bail!("the node still authorizes 60 s after the compose hash was removed");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let seconds = t0.elapsed().as_secs_f64();
        revocation = serde_json::json!({
            "removal_block": removed.block,
            "first_refusal_read_at_block": refused_block,
            "confirmations": args.confirmations,
            "blocks_after_removal": refused_block.map(|b| b.saturating_sub(removed.block)),
            "seconds_after_receipt": seconds,
        });
    }

    let server_cpu_ms = server_cpu * 1000.0 / load.ok.max(1) as f64;
    // One report signature per request, at the cost measured bare for the node's library; the
    // rest is everything else the node does (chain cache, derive, seal, log, gRPC, kernel).
    let verify_cpu_ms = node_rate.ms_each.min(server_cpu_ms);
    let revocation_text = match &revocation {
        serde_json::Value::Null => None,
        r => Some(format!(
            "refused {} block(s) after the removal block, {:.2} s after its receipt ({} confirmation(s))",
            r["blocks_after_removal"], r["seconds_after_receipt"].as_f64().unwrap_or(f64::NAN), r["confirmations"]
        )),
    };
    let results = serde_json::json!({
        "machine": { "threads": threads },
        "bare_verify": {
            "message_bytes": 0x2A0,
            "seconds_per_library": args.verify_seconds,
            "node_library": Library::NODE,
            "fastest_library": fastest.library,
            "per_library": rates,
        },
        "concurrency_1": {
            "requests": single.ok + single.errors,
            "errors": single.errors,
            "latency": single_latency,
            "p99_over_one_verify": single_latency.p99_ms / node_rate.ms_each,
        },
        "throughput": {
            "concurrency": args.concurrency,
            "requests": load.ok + load.errors,
            "errors": load.errors,
            "first_error": load.first_error.as_ref().map(|s| format!("{:?}: {}", s.code(), s.message())),
            "seconds": load.elapsed.as_secs_f64(),
            "get_app_key_per_sec": rps,
            "ratio_to_fastest_verify": rps / fastest.per_sec,
            "ratio_to_node_library_verify": rps / node_rate.per_sec,
            "latency": load_latency,
            "server_cpu_seconds": server_cpu,
            "client_cpu_seconds": client_cpu,
            "server_cpu_ms_per_request": server_cpu_ms,
            "server_cpu_ms_per_request_verification": verify_cpu_ms,
            "server_cpu_ms_per_request_rest": server_cpu_ms - verify_cpu_ms,
            "client_cpu_ms_per_request": client_cpu * 1000.0 / load.ok.max(1) as f64,
            "server_only_rate_at_full_machine": load.ok as f64 / server_cpu * threads as f64,
            "authorization_cache_hits": hits,
            "authorization_cache_misses": misses,
            "audit_records_per_sync": records / syncs,
        },
        "server_rss_kb": rss,
        "server_rss_peak_kb": memory_end.peak,
        "server_anon_rss_kb": anon,
        "many_apps": many_apps,
        "fleet": fleet,
        "revocation": revocation,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        println!("bare P-384 verify, {threads} threads, same key and message (mean of before and after the load):");
        for r in &rates.mean {
            let marks = [
                (r.library == Library::NODE).then_some("the node's"),
                (r.library == fastest.library).then_some("fastest"),
            ];
            let marks: Vec<&str> = marks.into_iter().flatten().collect();
            println!(
                "  {:<16} {:>8}/s  {} each{}",
                r.library.name(),
                human::count(r.per_sec),
                human::ms(r.ms_each),
                if marks.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", marks.join(", "))
                }
            );
        }
        println!(
            "GetAppKey, concurrency {}: {}/s = {:.2}x the fastest verify ({}), {:.2}x the node's ({}); {} errors in {:.1} s",
            args.concurrency,
            human::count(rps),
            rps / fastest.per_sec,
            fastest.library.name(),
            rps / node_rate.per_sec,
            Library::NODE.name(),
            human::count(load.errors as f64),
            load.elapsed.as_secs_f64()
        );
        println!(
            "  latency p50 {}, p95 {}, p99 {}",
            human::ms(load_latency.p50_ms),
            human::ms(load_latency.p95_ms),
            human::ms(load_latency.p99_ms)
        );
        println!(
            "  node CPU per request {}: verification {} (one bare verify), the rest {}; client CPU per request {}",
            human::ms(server_cpu_ms),
            human::ms(verify_cpu_ms),
            human::ms(server_cpu_ms - verify_cpu_ms),
            human::ms(client_cpu * 1000.0 / load.ok.max(1) as f64)
        );
        println!(
            "GetAppKey, concurrency 1: p50 {}, p99 {} = {:.2}x one verify",
            human::ms(single_latency.p50_ms),
            human::ms(single_latency.p99_ms),
            single_latency.p99_ms / node_rate.ms_each
        );
        println!(
            "authorization reads during load: {} cache hits, {} chain reads (eth_call)",
            human::count(hits),
            human::count(misses)
        );
        println!(
            "key-release log: {:.1} records per disk sync",
            records / syncs
        );
        for (what, m) in [("RSS", &rss), ("anonymous RSS", &anon)] {
            let kb = |key: &str| m[key].as_f64().unwrap_or(f64::NAN);
            println!(
                "server {what}: {} before, {} after warm-up, {} in the last fifth ({}), {} at end",
                human::kib(kb("before_load")),
                human::kib(kb("after_warmup")),
                human::kib(kb("last_fifth")),
                human::percent(kb("growth_after_warmup_pct")),
                human::kib(kb("end"))
            );
        }
        println!("server peak RSS: {}", human::kib(memory_end.peak as f64));
        if !many_apps.is_null() {
            let f = |key: &str| many_apps[key].as_f64().unwrap_or(f64::NAN);
            println!(
                "{} apps: warm-up {} chain reads (eth_call) for {} first requests, {} errors; then {}/s = {:.2}x the one-app rate; {} of node memory per app (cached decision and grant)",
                many_apps["apps"],
                human::count(f("cold_eth_calls")),
                many_apps["apps"],
                many_apps["warmup_errors"],
                human::count(f("get_app_key_per_sec")),
                f("ratio_to_one_app"),
                human::kib(f("anon_rss_kb_per_app")),
            );
        }
        if !fleet.is_null() {
            let (boot, steady) = (&fleet["boot"], &fleet["steady"]);
            let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
            println!(
                "fleet of {} machines: boot (each one's first request at once) {} errors in {:.1} s, p99 {}; then {}/s = {:.2}x the concurrency-{} rate over {} connections, {} errors, p50 {}, p99 {}; node CPU per request {}, client {}",
                fleet["machines"],
                boot["errors"],
                f(&boot["seconds"]),
                human::ms(f(&boot["latency"]["p99_ms"])),
                human::count(f(&steady["get_app_key_per_sec"])),
                f(&steady["ratio_to_concurrency_64"]),
                args.concurrency,
                fleet["machines"],
                steady["errors"],
                human::ms(f(&steady["latency"]["p50_ms"])),
                human::ms(f(&steady["latency"]["p99_ms"])),
                human::ms(f(&steady["server_cpu_ms_per_request"])),
                human::ms(f(&steady["client_cpu_ms_per_request"])),
            );
        }
        if let Some(text) = revocation_text {
            println!("revocation: {text}");
        }
    }
    let _ = node.kill().await;
    let phase_errors = ["warmup_errors", "errors"]
        .iter()
        .map(|k| many_apps[k].as_u64().unwrap_or(0))
        .sum::<u64>()
        + ["boot", "steady"]
            .iter()
            .map(|k| fleet[k]["errors"].as_u64().unwrap_or(0))
            .sum::<u64>();
    Ok(
        if load.errors == 0 && single.errors == 0 && phase_errors == 0 {
            ExitCode::SUCCESS
        } else {
            eprintln!("errors: {:?}", load.first_error.or(single.first_error));
            ExitCode::from(super::EXIT_REJECTED)
        },
    )
}
