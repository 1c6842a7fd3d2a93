//! Arguments and helpers shared by `snpkms gov`, `snpkms app` and `snpkms audit`.

use super::EXIT_REJECTED;
use anyhow::Context;
use snpkms_chain_client::{Address, ChainError, PrivateKeySigner};
use snpkms_governance::{signer_from_env, signer_from_file, Progress};
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Clone, Debug)]
pub struct Rpc {
    /// JSON-RPC endpoint of the chain (http).
    #[arg(long, env = "SNPKMS_RPC_URL", value_name = "URL")]
    pub rpc_url: String,
}

#[derive(clap::Args, Clone, Debug)]
pub struct Registry {
    /// The KmsRegistry address (the proxy).
    #[arg(long, env = "SNPKMS_REGISTRY", value_name = "ADDRESS")]
    pub registry: Address,
}

/// Where the signing key comes from. Never a command-line argument: other users of the machine
/// can read those in the process list.
#[derive(clap::Args, Clone, Debug)]
pub struct Signer {
    /// File holding the signer's hex private key.
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// Environment variable holding the signer's hex private key (used when --key-file is absent).
    #[arg(long, value_name = "NAME", default_value = "SNPKMS_OWNER_KEY")]
    pub key_env: String,
}

impl Signer {
    pub fn load(&self) -> anyhow::Result<PrivateKeySigner> {
        Ok(match &self.key_file {
            Some(path) => signer_from_file(path)?,
            None => signer_from_env(&self.key_env)?,
        })
    }
}

#[derive(clap::Args, Clone, Copy, Debug)]
pub struct Output {
    /// Machine-readable output (JSON) on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs an async command; a contract refusal exits with status 1, other errors go to `main`.
pub fn run_async(fut: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match runtime.block_on(fut) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e)
            if matches!(
                e.downcast_ref::<ChainError>(),
                Some(ChainError::Contract(_))
            ) =>
        {
            eprintln!("error: {e:#}");
            Ok(ExitCode::from(EXIT_REJECTED))
        }
        Err(e) => Err(e),
    }
}

/// Runs an async computation to its value on a fresh runtime.
pub fn run_async_value<T>(fut: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(fut)
}

/// Shows a transaction's progress on stderr: one line, rewritten in place on a terminal.
pub fn progress_line() -> impl Fn(&Progress) + Send + Sync + 'static {
    let tty = std::io::stderr().is_terminal();
    move |p| {
        let mut err = std::io::stderr().lock();
        match p {
            Progress::Sent { what, tx_hash } => {
                let _ = write!(err, "{what}: sent {tx_hash}, waiting for the receipt");
                let _ = if tty { err.flush() } else { writeln!(err) };
            }
            Progress::Waiting { tx_hash, elapsed } if tty => {
                let _ = write!(
                    err,
                    "\r\x1b[2K{tx_hash}: waiting for the receipt ({} s)",
                    elapsed.as_secs()
                );
                let _ = err.flush();
            }
            Progress::Waiting { .. } => {}
        }
    }
}

/// Ends the progress line before the result is printed.
pub fn end_progress_line() {
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K");
    }
}

/// Prints a transaction's outcome (with extra JSON fields, e.g. the new app's address).
pub fn print_outcome(
    out: &Output,
    what: &str,
    tx: &snpkms_governance::TxOutcome,
    extra: serde_json::Value,
) -> anyhow::Result<()> {
    end_progress_line();
    if out.json {
        let mut v = serde_json::to_value(tx)?;
        if let (Some(obj), serde_json::Value::Object(more)) = (v.as_object_mut(), extra) {
            obj.extend(more);
        }
        println!("{v}");
    } else {
        println!(
            "{what}: tx {} in block {}, gas used {}",
            tx.tx_hash, tx.block, tx.gas_used
        );
    }
    Ok(())
}

/// Hex of exactly `n` bytes, with the flag's name in the error.
pub fn hex_bytes(s: &str, n: usize, flag: &str) -> anyhow::Result<Vec<u8>> {
    let b = hex::decode(s.trim().trim_start_matches("0x"))
        .with_context(|| format!("{flag}: {s:?} is not hex"))?;
    if b.len() != n {
        anyhow::bail!(
            "{flag}: expected {n} bytes ({} hex digits), got {}",
            2 * n,
            b.len()
        );
    }
    Ok(b)
}
