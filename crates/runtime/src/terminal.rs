//! Logging and progress bars on the terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use kiln_core::progress::ProgressSink;

use crate::args::{LogArgs, LogFormat};

/// Sets up `tracing` for a binary: logs go to stderr, so stdout stays for results.
pub fn init_logging(args: &LogArgs) {
    use tracing_subscriber::EnvFilter;
    let level = if args.quiet {
        "warn"
    } else {
        match args.verbose {
            0 => "info",
            1 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match args.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    // A second init (tests calling main twice) keeps the first subscriber.
    drop(result);
}

/// Shows the libraries' progress as bars on an interactive terminal (and not at all in
/// CI, Argo or a pipe).
pub fn install_progress_bars() {
    if std::io::stderr().is_terminal() {
        kiln_core::progress::install(terminal_bar);
    }
}

struct Bar(ProgressBar);

impl ProgressSink for Bar {
    fn set_position(&self, position: u64) {
        self.0.set_position(position);
    }
    fn inc(&self, delta: u64) {
        self.0.inc(delta);
    }
    fn finish(&self) {
        if !self.0.is_finished() {
            self.0.finish_and_clear();
        }
    }
}

fn terminal_bar(len: Option<u64>, message: &str) -> Box<dyn ProgressSink> {
    let bar = match len {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {human_pos} rows {per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_message(message.to_string());
    Box::new(Bar(bar))
}
