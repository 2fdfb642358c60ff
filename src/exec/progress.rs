//! The progress bar: shown on stderr when it is a terminal, never otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress of one job, counted in units of work (bytes or chunks).
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar on stderr when `enabled` and stderr is a terminal; hidden otherwise.
    pub fn new(enabled: bool) -> Self {
        let bar = ProgressBar::hidden();
        if enabled && std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        Progress { bar }
    }

    /// A bar that never draws.
    pub fn hidden() -> Self {
        Progress {
            bar: ProgressBar::hidden(),
        }
    }

    /// Starts counting `total` units, shown as bytes or as plain counts.
    pub fn start(&self, total: u64, bytes: bool, what: &str) {
        let template = if bytes {
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"
        } else {
            "{msg} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_message(what.to_string());
        self.bar.set_length(total);
        self.bar.set_position(0);
    }

    /// Adds `n` finished units.
    pub fn advance(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl super::Observer for Progress {
    fn on_event(&self, event: &super::Event) {
        match event {
            // A skipped task (a resumed run) is done too.
            super::Event::TaskFinished(_) | super::Event::TaskSkipped(_) => self.advance(1),
            // Warnings go to stderr whether or not the bar is drawn, above it if it is.
            super::Event::Warning(text) => {
                self.bar.suspend(|| eprintln!("blockwise: warning: {text}"))
            }
            _ => {}
        }
    }
}
