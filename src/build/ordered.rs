//! An ordered, bounded, parallel map: `workers` threads run `work` on the
//! items, and `consume` sees the results in item order. At most `window`
//! results exist at once, so a slow consumer holds memory flat and a fast one
//! keeps every worker busy. Items are drawn lazily from an iterator, on the
//! consumer's thread, as room in the window frees up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

type Job<I, T> = (I, SyncSender<T>);

/// Runs `work` over `items` on `workers` threads and hands each result to
/// `consume` in order. Stops at the first error from either side, and returns
/// it; results still in flight are dropped.
pub fn map_in_order<I, T, E, W, C>(
    items: impl IntoIterator<Item = I>,
    workers: usize,
    window: usize,
    work: W,
    mut consume: C,
) -> Result<(), E>
where
    I: Send,
    T: Send,
    W: Fn(I) -> Result<T, E> + Sync,
    C: FnMut(T) -> Result<(), E>,
    E: Send,
{
    let workers = workers.max(1);
    let window = window.max(workers);
    // Set when the consumer stops early, so queued jobs are skipped, not done.
    let stopped = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (job_sender, job_receiver) = sync_channel::<Job<I, Result<T, E>>>(window);
        let job_receiver = Arc::new(Mutex::new(job_receiver));
        for _ in 0..workers {
            let jobs = job_receiver.clone();
            let (work, stopped) = (&work, &stopped);
            scope.spawn(move || {
                loop {
                    // Take the lock only to receive, never while working.
                    let job = match jobs.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(_) => return,
                    };
                    let Ok((item, reply)) = job else { return };
                    if stopped.load(Ordering::Relaxed) {
                        return;
                    }
                    // The consumer may have stopped early; then nobody listens.
                    let _ = reply.send(work(item));
                }
            });
        }
        let mut pending: VecDeque<Receiver<Result<T, E>>> = VecDeque::with_capacity(window);
        let mut items = items.into_iter();
        let mut dispatch = |pending: &mut VecDeque<Receiver<Result<T, E>>>| -> bool {
            let Some(item) = items.next() else { return false };
            let (reply, result) = sync_channel(1);
            pending.push_back(result);
            job_sender.send((item, reply)).is_ok()
        };
        for _ in 0..window {
            if !dispatch(&mut pending) {
                break;
            }
        }
        let outcome = (|| {
            while let Some(result) = pending.pop_front() {
                // A worker always replies unless it panicked, which scope re-raises.
                let Ok(result) = result.recv() else { break };
                consume(result?)?;
                dispatch(&mut pending);
            }
            Ok(())
        })();
        stopped.store(true, Ordering::Relaxed);
        drop(pending);
        drop(job_sender);
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn results_arrive_in_order() {
        let items: Vec<u64> = (0..200).collect();
        let mut seen = Vec::new();
        map_in_order(
            items,
            8,
            16,
            |i| {
                std::thread::sleep(Duration::from_micros((200 - i) * 10));
                Ok::<_, ()>(i * 2)
            },
            |v| {
                seen.push(v);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, (0..200).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn the_window_bounds_work_ahead_of_the_consumer() {
        let started = AtomicUsize::new(0);
        let consumed = AtomicUsize::new(0);
        map_in_order(
            (0..100).collect::<Vec<u32>>(),
            4,
            6,
            |_| {
                let ahead = started.fetch_add(1, Ordering::SeqCst) + 1 - consumed.load(Ordering::SeqCst);
                assert!(ahead <= 6 + 1, "{ahead} items ahead");
                Ok::<_, ()>(())
            },
            |_| {
                std::thread::sleep(Duration::from_micros(200));
                consumed.fetch_add(1, Ordering::SeqCst);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(consumed.load(Ordering::SeqCst), 100);
    }

    #[test]
    fn the_first_error_in_order_wins_and_stops_the_work() {
        let done = AtomicUsize::new(0);
        let result = map_in_order(
            (0..1000).collect::<Vec<u32>>(),
            4,
            8,
            |i| {
                done.fetch_add(1, Ordering::SeqCst);
                if i == 10 || i == 12 { Err(i) } else { Ok(i) }
            },
            |_| Ok(()),
        );
        assert_eq!(result, Err(10));
        assert!(done.load(Ordering::SeqCst) <= 10 + 8 + 4, "at most a window of work after the error");
        let result = map_in_order((0..10).collect::<Vec<u32>>(), 2, 4, Ok, |i| if i == 3 { Err(99) } else { Ok(()) });
        assert_eq!(result, Err(99));
    }

    #[test]
    fn no_items() {
        map_in_order(Vec::<u8>::new(), 4, 4, Ok::<_, ()>, |_| panic!("nothing to consume")).unwrap();
    }
}
