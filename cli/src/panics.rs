//! The last line of defence: a panic never ends the process with Rust's exit code 101.
//!
//! Bad input is reported as errors (exit 2) by the libraries, which are tested and fuzzed not
//! to panic. Should a bug panic anyway, the user gets one line saying it is a bug in Fusebox,
//! where it happened and what to send, and exit code 1 ("any other failure"); the backtrace
//! follows only with `RUST_BACKTRACE=1`. A closed standard output (`fusebox … | head`) is not
//! a bug: the command stops quietly with exit code 0, as `grep` and `ripgrep` do.

use std::any::Any;
use std::process::ExitCode;

/// Replaces the default panic report with the one described in the module docs.
pub fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = payload_text(info.payload());
        if is_broken_pipe(&message) {
            return;
        }
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error (a bug in Fusebox{location}): {message}\n  \
             please report it with the command and, if you can, the input that caused it"
        );
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            eprintln!("{}", std::backtrace::Backtrace::force_capture());
        }
    }));
}

/// The exit code after a panic reached `main`: see the module docs.
pub fn exit_code(payload: &(dyn Any + Send)) -> ExitCode {
    if is_broken_pipe(&payload_text(payload)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn payload_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// `println!` panics with "failed printing to stdout: Broken pipe" when the reader went away.
fn is_broken_pipe(message: &str) -> bool {
    message.contains("Broken pipe")
}
