//! The `blockwise` command.

use std::process::ExitCode;

use blockwise::exec::CancelToken;
use blockwise::storage::atomic::remove_all_temps;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Large blocks (group tables, sort runs) on huge pages: see `HugePageAlloc`.
#[global_allocator]
static ALLOCATOR: blockwise::memory::HugePageAlloc = blockwise::memory::HugePageAlloc;

fn main() -> ExitCode {
    blockwise::error::set_spelling(blockwise::error::Spelling::CommandLine);
    let cancel = CancelToken::new();
    watch_signals(cancel.clone());
    match blockwise::cli::run(cancel.clone()) {
        Ok(code) => code,
        Err(e) => {
            // The executor reports a plain cancellation; the token knows which
            // signal caused it, and so which exit code a shell expects.
            let e = cancel.explain(e);
            eprintln!("blockwise: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP all mean "stop": the first one cancels the job at its
/// next chunk boundary, whose error path removes the temporary outputs and spill
/// files; a second one removes them now and exits at once.
fn watch_signals(cancel: CancelToken) {
    // Without the handlers the default action still ends the process; only the
    // cleanup is lost, and `blockwise` must still run, so the error is ignored.
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    // A thread that cannot start at launch leaves the signals caught but unanswered;
    // it does not happen in practice, and there is nothing better to do then.
    let _ = std::thread::Builder::new()
        .name("blockwise-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if let Some(first) = cancel.signal() {
                    remove_all_temps();
                    blockwise::memory::remove_all_spill_dirs();
                    eprintln!("blockwise: {}", cancel.error());
                    // The first signal decides the exit code, as on the normal path
                    // (`CancelToken::interrupt`): SIGINT then SIGTERM is still 130.
                    std::process::exit(128 + first);
                }
                cancel.interrupt(signal);
            }
        });
}
