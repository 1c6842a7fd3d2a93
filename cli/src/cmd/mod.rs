//! One module per subcommand.

pub mod app;
pub mod audit;
#[cfg(feature = "simulator")]
pub mod bench;
pub mod certs;
pub mod chain_args;
pub mod compose_arg;
#[cfg(feature = "simulator")]
pub mod dev;
pub mod get_key;
pub mod gov;
pub mod guest_source;
pub mod measure;
pub mod node;
pub mod verify;

/// Exit status for usage errors (bad arguments, unreadable files), as clap uses.
pub const EXIT_USAGE: u8 = 2;
/// Exit status when the input was understood and refused (evidence rejected, chain said no).
pub const EXIT_REJECTED: u8 = 1;

/// Reads a file with its path in the error.
pub fn read_file(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}
