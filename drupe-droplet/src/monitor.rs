//! Keeps this node's speed reading current and works out its own CPU use
//! between reports, for the droplet's resource reports.
//!
//! Speed is measured at start, again every [`REMEASURE`] while the node is
//! idle, and at once when its CPU limit changes (`docker update --cpus`).
//! The best of the last [`READINGS`] readings is reported: a benchmark can
//! only be slowed by what else runs, so the fastest reading is the one
//! that met the least contention. A limit change starts the readings over.
//!
//! The own use (`cpu_load`) is the cgroup's CPU time between two reports
//! over the limit, less what the benchmark burnt meanwhile: measuring speed
//! is the droplet's doing, not load a task would meet.

use crate::cgroup::Source;
use crate::speed::{self, Speed};
use jupiter_common::proto::drupe::droplet::v1::NodeResources;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Readings kept; the best of them is reported.
pub const READINGS: usize = 3;
/// How often an idle node's speed is measured again.
pub const REMEASURE: Duration = Duration::from_secs(30);
/// How often the limit and idleness are checked.
const CHECK: Duration = Duration::from_secs(5);
/// Own use, as a fraction of the limit, below which the node is idle
/// enough to measure (the droplet's own probes stay below it).
const IDLE: f64 = 0.2;
/// The shortest window own use is computed over; a report sooner after
/// the last repeats its value rather than divide by a tiny interval.
const MIN_LOAD_WINDOW: Duration = Duration::from_millis(500);
/// Limits closer than this are the same (quota / period rounding).
const SAME_LIMIT: f64 = 1e-3;

#[derive(Debug)]
struct State {
    readings: VecDeque<(Speed, i64)>,
    /// CPU nanoseconds all benchmarks burnt so far.
    bench_nanos: u64,
    /// True while a benchmark runs: its burn is not yet in `bench_nanos`,
    /// so own use is not computed meanwhile.
    benchmarking: bool,
    /// (when, cgroup usage, bench_nanos) at the start of the load window.
    window: Option<(Instant, u64, u64)>,
    load: f64,
}

/// The node's speed readings and own-use accounting, shared between the
/// measuring task and the reports.
#[derive(Debug, Clone)]
pub struct Monitor {
    source: Source,
    state: Arc<Mutex<State>>,
    measured: watch::Sender<bool>,
}

impl Monitor {
    /// A monitor of this process's cgroup, with no reading yet.
    pub fn new() -> Self {
        Self::with_source(Source::detect())
    }

    pub fn with_source(source: Source) -> Self {
        let monitor = Self {
            source,
            state: Arc::new(Mutex::new(State {
                readings: VecDeque::new(),
                bench_nanos: 0,
                benchmarking: false,
                window: None,
                load: 0.0,
            })),
            measured: watch::channel(false).0,
        };
        // The first window opens now, so the first report's own use covers
        // the start (less the first benchmark).
        let _ = monitor.own_load(monitor.source.cpu_limit());
        monitor
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain numbers behind, still
        // usable: keep reporting rather than poison every later report.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits (at most `timeout`) until the first speed reading is in.
    pub async fn first_reading(&self, timeout: Duration) {
        let mut rx = self.measured.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|m| *m)).await;
    }

    /// The best recent reading and when it was taken.
    pub fn best(&self) -> Option<(Speed, i64)> {
        self.state()
            .readings
            .iter()
            .copied()
            .max_by(|a, b| a.0.per_thread.total_cmp(&b.0.per_thread))
    }

    /// Adds a reading taken at `at_millis`; one under another limit than
    /// the kept ones replaces them all.
    pub fn record(&self, reading: Speed, at_millis: i64) {
        let mut state = self.state();
        if state
            .readings
            .back()
            .is_some_and(|(last, _)| (last.cpu_limit - reading.cpu_limit).abs() > SAME_LIMIT)
        {
            state.readings.clear();
        }
        if reading.per_thread > 0.0 {
            state.readings.push_back((reading, at_millis));
        }
        while state.readings.len() > READINGS {
            state.readings.pop_front();
        }
        state.bench_nanos += (reading.cpu_secs * 1e9) as u64;
        state.benchmarking = false;
        drop(state);
        self.measured.send_replace(true);
    }

    /// Measures once, off the async threads.
    async fn measure(&self) {
        self.state().benchmarking = true;
        let reading = match tokio::task::spawn_blocking(speed::measure).await {
            Ok(reading) => reading,
            Err(e) => {
                tracing::warn!(error = %e, "speed measurement failed");
                self.state().benchmarking = false;
                return;
            }
        };
        tracing::info!(
            per_thread = reading.per_thread,
            core = reading.core,
            cpu_limit = reading.cpu_limit,
            "node speed measured"
        );
        self.record(reading, jupiter_common::clock::unix_nanos() / 1_000_000);
    }

    /// The node's own CPU use as a fraction of `cpu_limit` since the last
    /// call (or the one before, if that was under [`MIN_LOAD_WINDOW`] ago).
    pub fn own_load(&self, cpu_limit: f64) -> f64 {
        let usage = match self.source.usage_nanos() {
            Ok(usage) => usage,
            Err(e) => {
                tracing::debug!(error = %e, "own CPU use unread");
                return self.state().load;
            }
        };
        let now = Instant::now();
        let mut state = self.state();
        if state.benchmarking {
            return state.load;
        }
        let bench = state.bench_nanos;
        match state.window {
            Some((since, used, benched)) if now.duration_since(since) >= MIN_LOAD_WINDOW => {
                state.load = load(
                    usage.saturating_sub(used),
                    bench - benched,
                    now.duration_since(since),
                    cpu_limit,
                );
                state.window = Some((now, usage, bench));
            }
            Some(_) => {}
            None => state.window = Some((now, usage, bench)),
        }
        state.load
    }

    /// Fills the CPU fields of `r`: limit, count, own load and the best
    /// speed reading (speed 0 while there is none).
    pub fn fill(&self, r: &mut NodeResources) {
        let cpu_limit = match self.best() {
            Some((best, at)) => {
                r.speed = best.per_thread;
                r.capacity = best.capacity;
                r.speed_measured_at_unix_millis = at;
                best.cpu_limit
            }
            None => self.source.cpu_limit(),
        };
        r.cpu_limit = cpu_limit;
        r.cpu_count = speed::cpu_count(cpu_limit);
        r.cpu_load = self.own_load(cpu_limit);
    }

    /// Measures at once, then keeps the readings current (see the module
    /// comment). Runs until dropped.
    pub async fn run(self) {
        self.measure().await;
        let mut last = Instant::now();
        let mut window = self.idle_window();
        loop {
            tokio::time::sleep(CHECK).await;
            let limit = self.source.cpu_limit();
            let kept = self.best().map(|(s, _)| s.cpu_limit);
            let changed = kept.is_none_or(|kept| (kept - limit).abs() > SAME_LIMIT);
            let now = self.idle_window();
            let idle = match (window, now) {
                (Some(a), Some(b)) => load(b.1.saturating_sub(a.1), b.2 - a.2, b.0 - a.0, limit) < IDLE,
                _ => false,
            };
            window = now;
            if changed {
                tracing::info!(limit, "CPU limit changed; speed readings start over");
            }
            if changed || (idle && last.elapsed() >= REMEASURE) {
                self.measure().await;
                last = Instant::now();
                // The benchmark's own burn is not the node's use.
                window = self.idle_window();
            }
        }
    }

    /// (now, cgroup usage, bench burn) for the idleness check.
    fn idle_window(&self) -> Option<(Instant, u64, u64)> {
        let usage = self.source.usage_nanos().ok()?;
        Some((Instant::now(), usage, self.state().bench_nanos))
    }
}

impl Default for Monitor {
    fn default() -> Self {
        Self::new()
    }
}

/// Own use as a fraction of `cpu_limit`: `used` CPU nanoseconds, `bench`
/// of them the benchmark's, over `window` of wall time; clamped to [0, 1].
pub fn load(used: u64, bench: u64, window: Duration, cpu_limit: f64) -> f64 {
    let secs = window.as_secs_f64() * cpu_limit;
    if secs <= 0.0 {
        return 0.0;
    }
    (used.saturating_sub(bench) as f64 / 1e9 / secs).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_is_own_use_over_the_limit_without_the_benchmark() {
        let second = Duration::from_secs(1);
        // A 0.25-CPU node that used 0.125 CPU-seconds in a second: half.
        assert_eq!(load(125_000_000, 0, second, 0.25), 0.5);
        // ... of which the benchmark burnt 100 ms: a tenth.
        assert!((load(125_000_000, 100_000_000, second, 0.25) - 0.1).abs() < 1e-12);
        assert_eq!(load(5_000_000_000, 0, second, 1.0), 1.0, "clamped");
        assert_eq!(load(0, 10, second, 1.0), 0.0);
        assert_eq!(load(10, 0, Duration::ZERO, 1.0), 0.0);
    }

    fn reading(core: f64, limit: f64) -> Speed {
        Speed {
            cpu_secs: 0.05,
            ..Speed::from_core(core, limit)
        }
    }

    #[test]
    fn the_best_of_the_last_readings_is_kept() {
        let m = Monitor::with_source(Source::Host);
        assert!(m.best().is_none());
        m.record(reading(0.9, 1.0), 1);
        m.record(reading(1.0, 1.0), 2);
        m.record(reading(0.5, 1.0), 3);
        assert_eq!(m.best().map(|(s, at)| (s.per_thread, at)), Some((1.0, 2)));
        // Two more slow ones push the good one out: the node got slower.
        m.record(reading(0.6, 1.0), 4);
        m.record(reading(0.5, 1.0), 5);
        assert_eq!(m.best().map(|(s, at)| (s.per_thread, at)), Some((0.6, 4)));
        assert_eq!(m.state().bench_nanos, 250_000_000);
    }

    #[test]
    fn a_new_limit_starts_over() {
        let m = Monitor::with_source(Source::Host);
        m.record(reading(1.0, 1.0), 1);
        m.record(reading(1.0, 0.25), 2);
        let (best, at) = m.best().expect("a reading");
        assert_eq!((best.per_thread, best.cpu_limit, at), (0.25, 0.25, 2));
    }

    #[test]
    fn reports_carry_the_best_reading_and_its_limit() {
        let m = Monitor::with_source(Source::Host);
        let mut r = NodeResources::default();
        m.fill(&mut r);
        assert_eq!(r.speed, 0.0, "not measured yet");
        assert!(r.cpu_limit >= 1.0 && r.cpu_count >= 1);
        m.record(reading(1.2, 1.5), 7);
        m.fill(&mut r);
        assert_eq!(
            (r.speed, r.capacity, r.cpu_limit, r.cpu_count),
            (1.2, 1.2 * 1.5, 1.5, 2)
        );
        assert_eq!(r.speed_measured_at_unix_millis, 7);
        assert!((0.0..=1.0).contains(&r.cpu_load));
    }

    #[tokio::test]
    async fn the_first_reading_comes_in_and_its_burn_is_counted() {
        let m = Monitor::with_source(Source::Host);
        let task = tokio::spawn(m.clone().run());
        m.first_reading(Duration::from_secs(10)).await;
        task.abort();
        let (best, _) = m.best().expect("a first reading");
        assert!(best.per_thread > 0.0);
        assert!(m.state().bench_nanos > 0, "to leave out of the own use");
        assert!(!m.state().benchmarking);
    }
}
