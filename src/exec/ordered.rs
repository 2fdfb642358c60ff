//! An ordered parallel pipeline: partitions are produced on several threads and
//! consumed on the calling thread in partition order.
//!
//! Memory stays bounded whatever the partition size: each partition streams its
//! items through a small bounded channel, and a partition may start only when it is
//! within `window` partitions of the one being consumed. So at most
//! `window × (capacity + 1)` items exist at once, and loading can never run far
//! ahead of writing.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Condvar, Mutex};

use super::CancelToken;
use crate::error::{Error, Result};

/// Items buffered per partition between its producer and the consumer.
const CAPACITY: usize = 4;

/// Runs `produce(i, emit)` for every partition `i` in `0..n` on `workers` threads,
/// and `consume(i, item)` on the calling thread for every emitted item, in order of
/// `i` and, within a partition, in emission order.
///
/// The first error (from a producer, the consumer, or cancellation) stops the
/// pipeline: producers stop at their next emit, and it is returned.
///
/// # Errors
/// The first error of any producer or of the consumer; [`Error::Cancelled`].
pub fn for_each_ordered<T, P, C>(
    n: usize,
    workers: usize,
    window: usize,
    cancel: &CancelToken,
    produce: P,
    consume: C,
) -> Result<()>
where
    T: Send,
    P: Fn(usize, &mut dyn FnMut(T) -> Result<()>) -> Result<()> + Sync,
    C: FnMut(usize, T) -> Result<()>,
{
    for_each_ordered_with(n, workers, window, CAPACITY, cancel, produce, consume)
}

/// [`for_each_ordered`] with `capacity` items buffered per partition: 1 for large
/// items (encoded row groups), so a partition waiting its turn holds little.
///
/// # Errors
/// As [`for_each_ordered`].
pub fn for_each_ordered_with<T, P, C>(
    n: usize,
    workers: usize,
    window: usize,
    capacity: usize,
    cancel: &CancelToken,
    produce: P,
    mut consume: C,
) -> Result<()>
where
    T: Send,
    P: Fn(usize, &mut dyn FnMut(T) -> Result<()>) -> Result<()> + Sync,
    C: FnMut(usize, T) -> Result<()>,
{
    let window = window.max(1);
    let mut senders: Vec<Mutex<Option<SyncSender<Result<T>>>>> = Vec::with_capacity(n);
    let mut receivers: Vec<Receiver<Result<T>>> = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = sync_channel(capacity.max(1));
        senders.push(Mutex::new(Some(tx)));
        receivers.push(rx);
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let consumed = Mutex::new(0usize);
    let turn = Condvar::new();

    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, n.max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    return;
                }
                {
                    let mut done = consumed.lock().unwrap_or_else(|e| e.into_inner());
                    while i >= *done + window && !stop.load(Ordering::SeqCst) {
                        done = turn.wait(done).unwrap_or_else(|e| e.into_inner());
                    }
                }
                let Some(tx) = senders[i].lock().unwrap_or_else(|e| e.into_inner()).take() else {
                    return;
                };
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let result = produce(i, &mut |item| {
                    if stop.load(Ordering::Relaxed) {
                        return Err(Error::Cancelled);
                    }
                    cancel.check()?;
                    tx.send(Ok(item)).map_err(|_| Error::Cancelled)
                });
                if let Err(e) = result {
                    let _ = tx.send(Err(e));
                }
            });
        }

        let result = (|| {
            for (i, rx) in receivers.iter().enumerate() {
                // A closed channel means the partition is complete.
                while let Ok(item) = rx.recv() {
                    consume(i, item?)?;
                }
                cancel.check()?;
                *consumed.lock().unwrap_or_else(|e| e.into_inner()) = i + 1;
                turn.notify_all();
            }
            Ok(())
        })();
        if result.is_err() {
            stop.store(true, Ordering::SeqCst);
            // Dropping the receivers wakes producers blocked on a full channel.
            drop(receivers);
            turn.notify_all();
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_arrive_in_partition_order() {
        let mut seen = Vec::new();
        for_each_ordered(
            20,
            4,
            3,
            &CancelToken::new(),
            |i, emit| {
                for k in 0..5 {
                    emit((i, k))?;
                }
                Ok(())
            },
            |_, item| {
                seen.push(item);
                Ok(())
            },
        )
        .unwrap();
        let expected: Vec<_> = (0..20).flat_map(|i| (0..5).map(move |k| (i, k))).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_producer_error_stops_everything() {
        let err = for_each_ordered(
            50,
            2,
            2,
            &CancelToken::new(),
            |i, emit| {
                if i == 7 {
                    return Err(Error::Usage("bad partition 7".into()));
                }
                emit(i)
            },
            |_, _| Ok(()),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "bad partition 7");
    }

    #[test]
    fn a_consumer_error_unblocks_producers() {
        let err = for_each_ordered(
            10,
            2,
            4,
            &CancelToken::new(),
            |_, emit| {
                for k in 0..100 {
                    emit(k)?;
                }
                Ok(())
            },
            |i, _| {
                if i == 1 {
                    Err(Error::Usage("disk".into()))
                } else {
                    Ok(())
                }
            },
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "disk");
    }

    #[test]
    fn cancellation_is_reported() {
        let cancel = CancelToken::new();
        cancel.cancel();
        let err = for_each_ordered(3, 2, 2, &cancel, |i, emit| emit(i), |_, _| Ok(())).unwrap_err();
        assert!(matches!(err, Error::Cancelled));
    }
}
