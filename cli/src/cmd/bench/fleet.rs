//! `snpkms bench --fleet N`: N machines booting at once. Each is its own simulated chip (its
//! own VCEK, so its own chain verification and its own registry decision on first use), with
//! its own connection from its own loopback address (as a fleet comes from many hosts, and as
//! the per-address connection limit expects). First every machine's first request at once (the
//! boot: cold chain, cold decision), then every machine's further requests, all connections
//! busy at once (steady state), compared with the concurrency-64 rate of the same run.

use super::{percentiles, AppGuest, PhaseResult, Prepared};
use crate::stack::LocalStack;
use anyhow::Context;
use snpkms_api::pb::kms_client::KmsClient;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

/// Connects from a chosen loopback source address.
#[derive(Clone, Copy)]
struct FromAddress(Ipv4Addr);

impl tower_service::Service<tonic::codegen::http::Uri> for FromAddress {
    type Response = hyper_util::rt::TokioIo<tokio::net::TcpStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: tonic::codegen::http::Uri) -> Self::Future {
        let source = self.0;
        Box::pin(async move {
            let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
            let to: SocketAddr = authority
                .parse()
                .map_err(|e| std::io::Error::other(format!("{authority}: {e}")))?;
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from((source, 0)))?;
            let stream = socket.connect(to).await?;
            stream.set_nodelay(true)?;
            Ok(hyper_util::rt::TokioIo::new(stream))
        })
    }
}

/// The i-th machine's source address: 127.1.0.1, 127.1.0.2, ... (all of 127/8 is loopback).
fn source(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(
        127,
        1 + (i / 62_500) as u8,
        (i / 250 % 250) as u8,
        (i % 250) as u8 + 1,
    )
}

struct Machine {
    client: KmsClient<Channel>,
    table: Vec<u8>,
    requests: Vec<Prepared>,
}

/// `each` requests per machine from `machines[i].requests`, all machines at once.
async fn round(machines: &mut [Machine], compose: [u8; 32], each: usize) -> PhaseResult {
    let start = Instant::now();
    let tasks: Vec<_> = machines
        .iter_mut()
        .map(|m| {
            let mut client = m.client.clone();
            let table = m.table.clone();
            let mine: Vec<Prepared> = m.requests.drain(..each.min(m.requests.len())).collect();
            tokio::spawn(async move {
                let mut result = PhaseResult::default();
                for p in mine {
                    let (answer, micros) = super::send(&mut client, p, &compose, &table).await;
                    result.record(answer, micros);
                }
                result
            })
        })
        .collect();
    let mut result = PhaseResult::default();
    for t in tasks {
        if let Ok(part) = t.await {
            result.merge(part);
        }
    }
    result.elapsed = start.elapsed();
    result
}

/// Runs the fleet phase: `n` machines, `per_machine` requests each.
pub async fn run(
    stack: &LocalStack,
    url: &str,
    challenges: &KmsClient<Channel>,
    n: usize,
    per_machine: usize,
    concurrency_64_rate: f64,
    node_pid: u32,
) -> anyhow::Result<serde_json::Value> {
    let per_machine = per_machine.max(2);
    eprintln!("[bench] fleet: {n} machines (own chip, own connection from its own address), {per_machine} requests each");
    // Any machine may run the app: the fleet's chips are not listed one by one.
    stack
        .app_owner
        .set_allow_any_device(stack.app, true)
        .await?;
    let app = stack.app;
    let (guests, tables) = {
        let stack_platform = stack.guest_platform.clone();
        let (compose, image) = (stack.compose_hash, stack.guest_image);
        tokio::task::spawn_blocking(move || {
            let mut guests: Vec<AppGuest> = Vec::with_capacity(n);
            let mut tables = Vec::with_capacity(n);
            for i in 0..n {
                let platform = Arc::new(snpkms_simulator::SimulatedPlatform::new(
                    snpkms_local::authority(),
                    stack_platform.product(),
                    format!("snpkms-bench-fleet-{i}").as_bytes(),
                ));
                let guest = snpkms_local::simulated_guest(
                    platform,
                    app.0 .0,
                    compose,
                    image,
                    snpkms_simulator::GuestLaunch::default().policy,
                );
                let table = snpkms_platform::Attestor::attest(&guest, [0; 64])
                    .context("simulated evidence")?
                    .cert_table;
                guests.push((app.0 .0, Arc::new(guest)));
                tables.push(table);
            }
            anyhow::Ok((guests, tables))
        })
        .await??
    };
    let mut machines = Vec::with_capacity(n);
    for (i, table) in tables.into_iter().enumerate() {
        let channel = Endpoint::from_shared(url.to_string())?
            .connect_with_connector(FromAddress(source(i)))
            .await
            .with_context(|| format!("connecting machine {i} from {}", source(i)))?;
        machines.push(Machine {
            client: KmsClient::new(channel),
            table,
            requests: Vec::new(),
        });
    }
    // Evidence: per_machine reports per machine, each over a fresh challenge.
    let mut order: Vec<AppGuest> = Vec::with_capacity(n * per_machine);
    for _ in 0..per_machine {
        order.extend(guests.iter().cloned());
    }
    let prepared = prepare_in_order(challenges, &order).await?;
    for (i, p) in prepared.into_iter().enumerate() {
        machines[i % n].requests.push(p);
    }
    // Until the registry's allow-any-device is at the node's read depth.
    let deadline = Instant::now() + Duration::from_secs(60);
    let probe_guest = [guests[0].clone()];
    loop {
        let probe = prepare_in_order(challenges, &probe_guest).await?;
        let mut m = [Machine {
            client: machines[0].client.clone(),
            table: machines[0].table.clone(),
            requests: probe,
        }];
        if round(&mut m, stack.compose_hash, 1).await.ok == 1 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the node does not serve the fleet's machines after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let boot = round(&mut machines, stack.compose_hash, 1).await;
    let cpu = || {
        (
            super::cpu_seconds(node_pid),
            super::cpu_seconds(std::process::id()),
        )
    };
    let (node_0, client_0) = cpu();
    let steady = round(&mut machines, stack.compose_hash, per_machine).await;
    let (node_1, client_1) = cpu();
    let answered = steady.ok.max(1) as f64;
    let per_request = |seconds: f64| seconds * 1000.0 / answered;
    let rate = steady.ok as f64 / steady.elapsed.as_secs_f64();
    let summary = |r: PhaseResult| {
        serde_json::json!({
            "requests": r.ok + r.errors,
            "errors": r.errors,
            "first_error": r.first_error.map(|s| format!("{:?}: {}", s.code(), s.message())),
            "seconds": r.elapsed.as_secs_f64(),
            "latency": percentiles(r.latencies),
        })
    };
    let mut steady_json = summary(steady);
    steady_json["get_app_key_per_sec"] = rate.into();
    steady_json["ratio_to_concurrency_64"] = (rate / concurrency_64_rate).into();
    steady_json["server_cpu_ms_per_request"] = per_request(node_1 - node_0).into();
    steady_json["client_cpu_ms_per_request"] = per_request(client_1 - client_0).into();
    Ok(serde_json::json!({
        "machines": n,
        "boot": summary(boot),
        "steady": steady_json,
    }))
}

/// Evidence for each of `guests` in order (one fresh challenge each).
async fn prepare_in_order(
    challenges: &KmsClient<Channel>,
    guests: &[AppGuest],
) -> anyhow::Result<Vec<Prepared>> {
    super::prepare(challenges, guests, guests.len()).await
}
