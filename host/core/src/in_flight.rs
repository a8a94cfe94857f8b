//! A count of requests in flight that the request path updates without two cores writing the
//! same cache line: one padded counter per shard, each thread keeps to one shard, and the
//! count is their sum when it is read (by the dashboard's sampler and at a scrape).

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

/// Shards: more than the cores of the machines a gateway runs on, so threads rarely share.
const SHARDS: usize = 16;

/// The shard the next thread to count takes.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard.
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

/// One shard's counter, alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(AtomicI64);

/// How many requests are in flight.
#[derive(Debug, Default)]
pub struct InFlightCount {
    shards: [Shard; SHARDS],
}

impl InFlightCount {
    /// Counts one request until the returned guard is dropped.
    pub fn enter(&self) -> InFlight<'_> {
        let shard = SHARD.with(|s| *s);
        self.shards[shard].0.fetch_add(1, Ordering::Relaxed);
        InFlight { count: self, shard }
    }

    /// The requests in flight now (a guard dropped on another thread than its own leaves one
    /// shard below zero and another above: the sum is still right).
    pub fn get(&self) -> u64 {
        let sum: i64 = self.shards.iter().map(|s| s.0.load(Ordering::Relaxed)).sum();
        sum.max(0) as u64
    }
}

/// Keeps one request counted in flight ([`InFlightCount::enter`]).
#[derive(Debug)]
pub struct InFlight<'a> {
    count: &'a InFlightCount,
    shard: usize,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.count.shards[self.shard].0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_across_threads_until_their_guards_drop() {
        let count = InFlightCount::default();
        std::thread::scope(|s| {
            let guards: Vec<_> = (0..4)
                .map(|_| s.spawn(|| count.enter()))
                .map(|h| h.join().unwrap())
                .collect();
            assert_eq!(count.get(), 4);
            drop(guards);
        });
        assert_eq!(count.get(), 0);
        let here = count.enter();
        assert_eq!(count.get(), 1);
        drop(here);
        assert_eq!(count.get(), 0);
    }
}
