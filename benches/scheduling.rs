//! Scheduling overhead: a plan of 100,000 empty tasks on the local executor.
//!
//! Peers, from their own measurements: Dask's threaded scheduler about 100-200 µs a
//! task, its distributed scheduler about 1 ms. Target here: under 5 µs a task.
//! Run with `cargo bench --bench scheduling`.

use std::time::Instant;

use blockwise::exec::{CancelToken, LocalExecutor};
use blockwise::plan::{Plan, Task, TaskKind};

fn plan(n: u32, chained_every: u32) -> Plan {
    let mut p = Plan::new();
    for i in 0..n {
        // Every `chained_every`-th task waits for the one before it, so the
        // dependency bookkeeping is exercised too.
        let deps = if chained_every > 0 && i % chained_every == 1 {
            vec![i - 1]
        } else {
            vec![]
        };
        let kind = if i % 2 == 0 {
            TaskKind::Load
        } else {
            TaskKind::Release
        };
        p.push(Task::placeholder("noop", kind, deps));
    }
    p
}

fn main() {
    let n = 100_000;
    for (label, chained_every, threads) in [
        ("independent", 0, 2),
        ("half chained", 2, 2),
        ("independent, 1 thread", 0, 1),
    ] {
        let p = plan(n, chained_every);
        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            let report = LocalExecutor::new(threads, CancelToken::new())
                .unwrap()
                .run(&p, |_, _| Ok(()))
                .expect("run");
            assert_eq!(report.tasks, n as u64);
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!(
            "{label:>24}: {n} tasks in {best:.3} s = {:.2} µs a task (best of 5)",
            best * 1e6 / n as f64
        );
    }
}
