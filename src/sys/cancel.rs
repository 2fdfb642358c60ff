//! Cancellation: a shared flag that long-running work checks at chunk boundaries,
//! and the signal that raised it, if one did.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

#[derive(Debug, Default)]
struct State {
    cancelled: AtomicBool,
    /// The first signal that cancelled the job; 0 for none.
    signal: AtomicI32,
}

/// A cloneable cancellation flag. Cancelling is sticky.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<State>);

impl CancelToken {
    /// A fresh, uncancelled token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every holder to stop at its next chunk boundary.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
    }

    /// Cancels because the process received `signal` (a `libc::SIG*` number). The
    /// first signal is the one reported: a second one does not change the exit code.
    pub fn interrupt(&self, signal: i32) {
        let _ = self
            .0
            .signal
            .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
        self.cancel();
    }

    /// True once [`CancelToken::cancel`] or [`CancelToken::interrupt`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Relaxed)
    }

    /// The signal that cancelled the job, if a signal did.
    pub fn signal(&self) -> Option<i32> {
        match self.0.signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    /// The error a cancelled job reports: [`Error::Interrupted`] with the signal's
    /// name and exit code when a signal cancelled it, else [`Error::Cancelled`].
    pub fn error(&self) -> Error {
        match self.signal() {
            Some(signal) => interrupted(signal),
            None => Error::Cancelled,
        }
    }

    /// Replaces a plain [`Error::Cancelled`] (raised deep in the executor, which does
    /// not know why) by [`CancelToken::error`]; other errors pass unchanged.
    pub fn explain(&self, error: Error) -> Error {
        match error {
            Error::Cancelled => self.error(),
            other => other,
        }
    }

    /// `Err(..)` once cancelled.
    ///
    /// # Errors
    /// [`Error::Interrupted`] when a signal cancelled the token, [`Error::Cancelled`]
    /// when [`CancelToken::cancel`] did.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(self.error())
        } else {
            Ok(())
        }
    }
}

/// [`Error::Interrupted`] for `signal`, with the shell's exit code (128 + its number).
pub fn interrupted(signal: i32) -> Error {
    let name = match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        libc::SIGQUIT => "SIGQUIT",
        _ => "a signal",
    };
    Error::Interrupted {
        signal: name,
        code: u8::try_from(128 + signal).unwrap_or(u8::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_cancel_is_cancelled() {
        let token = CancelToken::new();
        assert!(token.check().is_ok());
        token.cancel();
        assert!(matches!(token.check(), Err(Error::Cancelled)));
        assert_eq!(token.signal(), None);
    }

    #[test]
    fn the_first_signal_decides_the_exit_code() {
        let token = CancelToken::new();
        token.clone().interrupt(libc::SIGTERM);
        token.interrupt(libc::SIGHUP);
        let err = token.check().unwrap_err();
        assert_eq!(err.exit_code(), 143);
        assert!(err.to_string().contains("SIGTERM"));
        assert_eq!(token.explain(Error::Cancelled).exit_code(), 143);
        assert_eq!(interrupted(libc::SIGHUP).exit_code(), 129);
        assert_eq!(interrupted(libc::SIGINT).exit_code(), 130);
    }
}
