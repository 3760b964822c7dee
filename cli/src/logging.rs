//! Where the libraries' `tracing` events go: stderr, warnings and errors by default.
//!
//! The libraries report what an operator must hear about but that does not fail a command —
//! a torn ledger tail truncated on open, a refund that could not be written, a final sync that
//! failed, Redis unreachable at start — as `tracing` warnings. Without a subscriber those
//! would go nowhere, so every command installs one first. `-v` raises the level (`info`,
//! `debug`, `trace`); `RUST_LOG` overrides it with the usual filter syntax. Log lines go to
//! stderr, so they never mix with a command's output on stdout.

use tracing_subscriber::EnvFilter;

/// Installs the stderr subscriber for `verbose` (`-v` count).
pub fn init(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // `try_init`: a second installation (tests calling `main` twice) is not an error.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .without_time()
        .try_init();
}
