//! Running the same work on several items at once, for the adapters whose calls wait on a
//! network: their ports take a batch and answer in order. Nothing here does I/O; it runs the
//! caller's closure on scoped threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Whether the caller was asked to stop (SIGTERM to `tam serve`): a batch checks it before
/// each item it has not begun, so a slow channel ends within one item instead of one batch.
pub type Stop<'a> = &'a (dyn Fn() -> bool + Sync);

/// A [`Stop`] that never asks.
pub fn never() -> bool {
    false
}

/// [`map`] that begins no item once `stop` says so: the answers of the items it began, which
/// are the first ones (workers take items in order), in order.
pub fn map_until<T: Sync, R: Send>(items: &[T], workers: usize, stop: Stop<'_>, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let answers = map_slots(items, workers, stop, f);
    answers.into_iter().map_while(|a| a.into_inner().unwrap_or_else(PoisonError::into_inner)).collect()
}

/// `f` over every item on at most `workers` threads, the answers in the items' order. One
/// worker (or one item) runs on the calling thread.
pub fn map<T: Sync, R: Send>(items: &[T], workers: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let answers = map_slots(items, workers, &never, f);
    answers
        .into_iter()
        .map(|a| {
            a.into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .expect("every item is taken by one worker, and a worker's panic ends the scope")
        })
        .collect()
}

/// Each item's answer, or none for the items begun after `stop` said so.
fn map_slots<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    stop: Stop<'_>,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<Mutex<Option<R>>> {
    let answers: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        // Stop is asked before an item is taken, so the items taken are the first ones.
        while !stop() {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            let answer = f(item);
            *answers[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(answer);
        }
    };
    if workers <= 1 || items.len() <= 1 {
        work();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..workers.min(items.len()) {
                scope.spawn(work);
            }
        });
    }
    answers
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn answers_keep_the_order_of_the_items() {
        let items: Vec<u64> = (0..100).collect();
        assert_eq!(map(&items, 7, |n| n * 2), items.iter().map(|n| n * 2).collect::<Vec<_>>());
        assert_eq!(map(&items, 1, |n| n + 1)[99], 100);
        assert!(map(&Vec::<u8>::new(), 4, |n| *n).is_empty());
    }

    #[test]
    fn asked_to_stop_it_begins_no_more_items_and_answers_those_it_began() {
        let items: Vec<u64> = (0..50).collect();
        let begun = AtomicUsize::new(0);
        let stop = || begun.load(Ordering::SeqCst) >= 10;
        let answers = map_until(&items, 4, &stop, |n| {
            begun.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(2));
            n * 3
        });
        // The workers in flight when it was asked finish their item; nothing else starts.
        assert!((10..=13).contains(&answers.len()), "{} answered", answers.len());
        assert_eq!(answers, items[..answers.len()].iter().map(|n| n * 3).collect::<Vec<_>>());
        assert_eq!(begun.load(Ordering::SeqCst), answers.len());
        assert!(map_until(&items, 1, &|| true, |n| *n).is_empty());
        assert_eq!(map_until(&items, 3, &never, |n| *n), items);
    }

    #[test]
    fn waiting_work_overlaps_up_to_the_workers() {
        let (in_flight, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        map(&[(); 12], 4, |()| {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(30));
            in_flight.fetch_sub(1, Ordering::SeqCst);
        });
        let most = most.load(Ordering::SeqCst);
        assert!((2..=4).contains(&most), "{most} at once");
    }
}
