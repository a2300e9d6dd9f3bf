//! The scheduler lag probe: how late this process's timers fire. A task sleeps a fixed
//! [`TICK`] again and again and records how far past its due time it woke; a stall of the
//! runtime or of the machine (overload, swapping, a stopped process) shows as a late wake-up.
//! Rounds ask [`LagMonitor::max_since`] how late the process was while their probes were in
//! flight; the lifecycle decides what that means ([`super::lifecycle::late`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often the probe wakes: below [`super::lifecycle::LAG_BOUND`], so any stall above the
/// bound spans a due time and is seen. Ten wake-ups a second cost nothing measurable.
pub const TICK: Duration = Duration::from_millis(100);

/// How long late wake-ups are remembered: the exported gauge is their maximum, so a stall
/// between two scrapes of `/metrics` (one a minute at most) is not missed.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Wake-ups later than this are remembered (the rest is timer granularity).
const NOISE: Duration = Duration::from_millis(1);

/// A cheap-to-clone handle on the probe's recent measurements.
#[derive(Debug, Clone, Default)]
pub struct LagMonitor(Arc<Mutex<Ticks>>);

#[derive(Debug, Default)]
struct Ticks {
    /// When the probe's current sleep is due: a wake-up overdue now is lag in progress.
    due: Option<Instant>,
    /// (woke at, how late), oldest first, within [`WINDOW`], above [`NOISE`].
    late: VecDeque<(Instant, Duration)>,
}

impl LagMonitor {
    fn expect(&self, due: Instant) {
        self.lock().due = Some(due);
    }

    /// Records a wake-up due at `due` that happened at `woke`; returns the maximum lag within
    /// [`WINDOW`] before `woke`.
    pub fn record(&self, due: Instant, woke: Instant) -> Duration {
        let mut t = self.lock();
        t.due = None;
        let lag = woke.saturating_duration_since(due);
        if lag > NOISE {
            t.late.push_back((woke, lag));
        }
        while t
            .late
            .front()
            .is_some_and(|(at, _)| woke.saturating_duration_since(*at) > WINDOW)
        {
            t.late.pop_front();
        }
        t.late.iter().map(|(_, l)| *l).max().unwrap_or_default()
    }

    /// The worst lag of the process since `since`: wake-ups late after it, and a wake-up
    /// overdue now.
    pub fn max_since(&self, since: Instant) -> Duration {
        let t = self.lock();
        let overdue = t.due.map_or(Duration::ZERO, |d| {
            Instant::now().saturating_duration_since(d)
        });
        t.late
            .iter()
            .filter(|(at, _)| *at >= since)
            .map(|(_, l)| *l)
            .fold(overdue, Duration::max)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ticks> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The probe task: until cancelled, sleeps [`TICK`], records how late it woke and exports the
/// recent maximum as `backstop_scheduler_lag_seconds`.
pub async fn run(monitor: LagMonitor, metrics: crate::metrics::Metrics, cancel: CancellationToken) {
    loop {
        let due = Instant::now() + TICK;
        monitor.expect(due);
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(due) => {}
        }
        let recent = monitor.record(due, Instant::now());
        metrics.scheduler_lag(recent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn remembers_late_wake_ups_for_a_window() {
        let m = LagMonitor::default();
        let t0 = Instant::now();
        assert_eq!(m.record(t0, t0 + ms(300)), ms(300));
        assert_eq!(m.record(t0 + ms(400), t0 + ms(400)), ms(300), "on time");
        assert_eq!(m.max_since(t0 + ms(300)), ms(300));
        assert_eq!(m.max_since(t0 + ms(301)), Duration::ZERO, "before since");
        let later = t0 + ms(300) + WINDOW + ms(1);
        assert_eq!(m.record(later, later), Duration::ZERO, "forgotten");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_process_shows_as_lag_in_progress_and_in_the_gauge() {
        let m = LagMonitor::default();
        let metrics = crate::metrics::Metrics::new();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(m.clone(), metrics.clone(), cancel.clone()));
        tokio::task::yield_now().await;
        let before = Instant::now();
        // The probe is due in 100 ms; the clock jumps 2 s without it running: a stall.
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(m.max_since(before) >= ms(1900), "{:?}", m.max_since(before));
        // Once it has run, the late wake-up is remembered and exported.
        tokio::time::sleep(ms(1)).await;
        tokio::task::yield_now().await;
        assert!(m.max_since(before) >= ms(1900));
        assert!(
            metrics
                .render()
                .contains("backstop_scheduler_lag_seconds 1.9"),
            "{}",
            metrics.render()
        );
        cancel.cancel();
        task.await.unwrap();
    }
}
