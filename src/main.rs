//! The `blockwise` command.

use std::process::ExitCode;

use blockwise::exec::CancelToken;
use blockwise::storage::atomic::remove_all_temps;

fn main() -> ExitCode {
    let cancel = CancelToken::new();
    let handler_token = cancel.clone();
    // First Ctrl-C: stop at the next chunk boundary and clean up. Second: clean up now.
    let _ = ctrlc::set_handler(move || {
        if handler_token.is_cancelled() {
            remove_all_temps();
            blockwise::memory::remove_all_spill_dirs();
            std::process::exit(130);
        }
        handler_token.cancel();
    });
    match blockwise::cli::run(cancel) {
        Ok(code) => code,
        Err(e) => {
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
