//! Progress bars on stderr for long work; invisible when stderr is not a terminal, so logs and
//! CI output stay clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `len` units with a message, or a hidden bar when stderr is not a terminal.
pub fn bar(len: u64, message: &'static str) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{bar:40}] {human_pos}/{human_len} ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

/// A spinner for a stage of unknown length (loading a file, computing a group), ticking on its
/// own; hidden when stderr is not a terminal. Call `finish_and_clear` when the stage is done.
fn spinner(message: impl Into<std::borrow::Cow<'static, str>>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}

/// Runs `work` under a [`spinner`] showing `message`.
pub fn stage<T>(message: impl Into<std::borrow::Cow<'static, str>>, work: impl FnOnce() -> T) -> T {
    let bar = spinner(message);
    let out = work();
    bar.finish_and_clear();
    out
}
