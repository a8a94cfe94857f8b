//! Clocks shared by the host: wall-clock milliseconds for records and stored responses, and
//! the monotonic origin plugins measure from.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the system clock is before it).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Nanoseconds since a fixed instant taken the first time this is called in the process.
pub fn monotonic_ns() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Runs `future` under a wall-clock cap of `limit`: `None` when the cap passed first. The
/// timer is armed only when the future first has to wait, so a future that is ready on its
/// first poll (a hook that never waits on the host) costs no timer; the cap then counts from
/// that first wait.
pub async fn capped<F: std::future::Future>(limit: std::time::Duration, future: F) -> Option<F::Output> {
    use std::task::Poll;
    let mut future = std::pin::pin!(future);
    let mut timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::capped;

    #[tokio::test(start_paused = true)]
    async fn a_ready_future_passes_and_a_waiting_one_is_cut_off_at_the_cap() {
        assert_eq!(capped(Duration::from_millis(10), async { 7 }).await, Some(7));
        let slow = tokio::time::sleep(Duration::from_secs(5));
        assert_eq!(capped(Duration::from_millis(10), slow).await, None);
        let quick = tokio::time::sleep(Duration::from_millis(5));
        assert_eq!(capped(Duration::from_millis(10), quick).await, Some(()));
    }
}
