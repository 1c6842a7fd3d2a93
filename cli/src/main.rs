//! `snpkms`: one binary for guests, app owners, registry governors, auditors and operators.
//! Each subcommand is a thin layer over library calls that the tests use too.

mod cmd;
#[cfg(feature = "simulator")]
mod stack;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "snpkms", version, about, long_about = None)]
struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `snpkms=debug`.
    #[arg(long, global = true, env = "SNPKMS_LOG", default_value = "warn")]
    log: String,
    /// Emit logs as JSON lines.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify SNP evidence (a report and its certificates) and print the decoded fields.
    Verify(cmd::verify::Args),
    /// Compute the SNP launch measurement of an OVMF (+ kernel) guest image, to register it.
    Measure(cmd::measure::Args),
    /// Get this guest's app keys from a KMS node (run inside the confidential VM).
    GetKey(cmd::get_key::Args),
    /// Run, bootstrap or inspect a KMS node (operators).
    Node(cmd::node::Args),
    /// Deploy and govern a registry: OS images, KMS images and chips, minimum TCB, KMS info.
    Gov(cmd::gov::Args),
    /// Register an app and choose which composes and devices may get its keys.
    App(cmd::app::Args),
    /// List the authorization events of a registry or an app.
    Audit(cmd::audit::Args),
    /// Fetch AMD certificates (VCEK, ASK/ARK chain, CRL) for a report, and import them into a
    /// node with no route to AMD.
    Certs(cmd::certs::Args),
    /// Start a local stack (chain, contracts, KMS node, simulated guest) and run the whole flow.
    #[cfg(feature = "simulator")]
    Dev(cmd::dev::Args),
    /// Measure GetAppKey throughput, latency, memory and revocation delay on a local stack.
    #[cfg(feature = "simulator")]
    Bench(cmd::bench::Args),
}

// jemalloc rather than glibc's malloc: glibc's per-thread arenas fragment as requests hop
// between threads, and the node's memory crept up under steady load while its live heap stayed
// flat. Measurements in BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log, cli.log_json);
    let result = match cli.command {
        Command::Verify(args) => cmd::verify::run(args),
        Command::Measure(args) => cmd::measure::run(args),
        Command::GetKey(args) => cmd::get_key::run(args),
        Command::Node(args) => cmd::node::run(args),
        Command::Gov(args) => cmd::gov::run(args),
        Command::App(args) => cmd::app::run(args),
        Command::Audit(args) => cmd::audit::run(args),
        Command::Certs(args) => cmd::certs::run(args),
        #[cfg(feature = "simulator")]
        Command::Dev(args) => cmd::dev::run(args),
        #[cfg(feature = "simulator")]
        Command::Bench(args) => cmd::bench::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(cmd::EXIT_USAGE)
        }
    }
}

fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour only on a terminal: escape codes in a log file or a pipe are noise.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
