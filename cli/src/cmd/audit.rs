//! `snpkms audit`: the authorization events of a registry or one app, as a table or JSON lines.

use super::chain_args::{run_async, Output, Registry, Rpc};
use snpkms_chain_client::Address;
use snpkms_governance::{AuditEvent, AuditReader};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    rpc: Rpc,
    #[command(flatten)]
    registry: Registry,
    /// Only this app's events (its AppAuth events and its registration).
    #[arg(long, value_name = "ADDRESS")]
    app: Option<Address>,
    /// First block (default: genesis; the deployment block is faster on a long chain).
    #[arg(long, default_value_t = 0, value_name = "BLOCK")]
    from: u64,
    /// Last block (default: latest).
    #[arg(long, value_name = "BLOCK", conflicts_with = "follow")]
    to: Option<u64>,
    /// Keep running and print new events as they are mined.
    #[arg(long)]
    follow: bool,
    /// With --follow: only report blocks this deep.
    #[arg(long, default_value_t = 0, value_name = "N")]
    confirmations: u64,
    /// With --follow: how often to poll.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    poll_ms: u64,
    /// JSON, one event per line (instead of a table).
    #[command(flatten)]
    out: Output,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    run_async(exec(args))
}

async fn exec(args: Args) -> anyhow::Result<()> {
    let reader = AuditReader::new(&args.rpc.rpc_url, args.registry.registry)?;
    let mut stdout = std::io::stdout().lock();
    if !args.out.json && !emit(&mut stdout, &header())? {
        return Ok(());
    }
    if args.follow {
        let mut rx = reader.follow(
            args.app,
            args.from,
            args.confirmations,
            Duration::from_millis(args.poll_ms.max(100)),
        );
        while let Some(e) = rx.recv().await {
            if !emit(&mut stdout, &line(&e?, args.out.json)?)? {
                break;
            }
        }
        return Ok(());
    }
    for e in reader.events(args.app, args.from, args.to).await? {
        if !emit(&mut stdout, &line(&e, args.out.json)?)? {
            break;
        }
    }
    Ok(())
}

fn line(e: &AuditEvent, json: bool) -> anyhow::Result<String> {
    Ok(if json {
        serde_json::to_string(e)?
    } else {
        row(e)
    })
}

/// Writes a line; `false` once the reader has gone (`snpkms audit | head`), which is no error.
fn emit(out: &mut impl Write, line: &str) -> anyhow::Result<bool> {
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn header() -> String {
    format!(
        "{:>8}  {:<20}  {:<42}  {:<24}  {:<66}  DETAILS",
        "BLOCK", "TIME (UTC)", "CONTRACT", "EVENT", "TX"
    )
}

fn row(e: &AuditEvent) -> String {
    format!(
        "{:>8}  {:<20}  {:<42}  {:<24}  {:<66}  {}",
        e.block_number,
        utc(e.block_timestamp),
        e.contract.to_string(),
        e.kind.name(),
        e.tx_hash.to_string(),
        e.kind.details()
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` from unix seconds (proleptic Gregorian, days-to-civil).
fn utc(t: u64) -> String {
    let days = (t / 86_400) as i64;
    let secs = t % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        // date -u -d @951782400 +%FT%TZ  (a leap day)
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        // date -u -d @1700000000 +%FT%TZ
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
