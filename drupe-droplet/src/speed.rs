//! How fast this node runs one task: a short calibrated CPU benchmark, in
//! the unit HEFT's costs are in (seconds on one full core of the reference
//! machine).
//!
//! The benchmark times a fixed kernel by the CPU time of its own thread
//! (`CLOCK_THREAD_CPUTIME_ID`), not by the wall clock: that gives the raw
//! rate of the core it ran on, whatever the quota throttled or other
//! containers took in between — so four containers starting at once on a
//! shared host agree on their core. The node's share of that core comes
//! from its cgroup quota, which is what the kernel enforces over time:
//! `per_thread = core × min(1, cpu_limit)`, `capacity = core × cpu_limit`.
//!
//! Deliberately there is no wall-clock trial: on a host whose containers'
//! quotas add up to more than its cores, a busy neighbour can hold a node
//! below its quota, but only while it is busy; that is load, not speed,
//! and a reading taken then would stick. Such contention is invisible here
//! (and in `cpu_load`, the node's own use); see notes/README-speed.md.

use crate::cgroup;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Kernel iterations per CPU-second on one core of the reference machine,
/// so that machine's core reads 1.00.
///
/// Reference: the Jupiter build host, an "AMD EPYC" 2-core VM (KVM, one
/// thread per core), idle, optimized build. To re-calibrate on another
/// reference: run `drupe-droplet --measure-speed` ten times on it while it
/// is otherwise idle, multiply this constant by the median `core` printed,
/// and update this comment.
pub const REFERENCE: f64 = 5.75e8;

/// Iterations per timed chunk: about a millisecond on the reference core,
/// long against the clock's resolution, short against a quota period.
const CHUNK: u64 = 200_000;

/// CPU time the benchmark spends: enough chunks for a stable reading;
/// under a 0.25-CPU quota it takes ~4× as long on the wall clock.
const CPU_BUDGET: Duration = Duration::from_millis(60);

/// Wall-clock bound, for a node starved of CPU altogether.
const WALL_BUDGET: Duration = Duration::from_millis(900);

/// One speed reading of this node.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Speed {
    /// How fast one task (one thread) runs here, relative to one full core
    /// of the reference machine.
    pub per_thread: f64,
    /// All the node's threads together, same unit.
    pub capacity: f64,
    /// CPUs the node may use: its cgroup quota (fractional), else its cores.
    pub cpu_limit: f64,
    /// Threads that can run at once: `cpu_limit` rounded up.
    pub cpu_count: u32,
    /// The raw rate of the core the benchmark ran on, relative to the
    /// reference core, before the node's share of it.
    pub core: f64,
    /// CPU time the benchmark burnt, seconds (to leave out of the node's
    /// own use).
    pub cpu_secs: f64,
}

impl Speed {
    /// The reading of a core `core` times the reference's, under a limit
    /// of `cpu_limit` CPUs.
    pub fn from_core(core: f64, cpu_limit: f64) -> Self {
        let cpu_limit = if cpu_limit.is_finite() && cpu_limit > 0.0 {
            cpu_limit
        } else {
            1.0
        };
        Self {
            per_thread: core * cpu_limit.min(1.0),
            capacity: core * cpu_limit,
            cpu_limit,
            cpu_count: cpu_count(cpu_limit),
            core,
            cpu_secs: 0.0,
        }
    }
}

/// Threads that can run at once under a limit of `cpu_limit` CPUs.
pub fn cpu_count(cpu_limit: f64) -> u32 {
    // A hair of slack so that 2.0000001 from a division reads 2, not 3.
    ((cpu_limit - 1e-6).ceil().max(1.0)) as u32
}

/// Measures this node's speed now, on the calling thread (blocks for
/// ~60 ms of CPU time: ~0.25 s under a 0.25-CPU quota, at most ~0.9 s).
pub fn measure() -> Speed {
    let limit = cgroup::cpu_limit();
    let (core, cpu_secs) = core_rate()
        .map(|(rate, cpu)| (rate / REFERENCE, cpu))
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "no thread CPU clock; speed unmeasured");
            (0.0, 0.0)
        });
    Speed {
        cpu_secs,
        ..Speed::from_core(core, limit)
    }
}

/// Kernel iterations per CPU-second of the calling thread, and the CPU
/// seconds spent finding out.
fn core_rate() -> Result<(f64, f64), cgroup::CgroupError> {
    let wall = Instant::now();
    let start = cgroup::thread_cpu_nanos()?;
    // Warm-up: caches, branch predictors and the core's clock ramp.
    black_box(kernel(black_box(CHUNK), 1));
    let mut rates = Vec::with_capacity(64);
    let mut before = cgroup::thread_cpu_nanos()?;
    let mut seed = 2;
    loop {
        black_box(kernel(black_box(CHUNK), seed));
        seed += 1;
        let after = cgroup::thread_cpu_nanos()?;
        if after > before {
            rates.push(CHUNK as f64 * 1e9 / (after - before) as f64);
        }
        before = after;
        let spent = Duration::from_nanos(after.saturating_sub(start));
        if rates.len() >= 8 && (spent >= CPU_BUDGET || wall.elapsed() >= WALL_BUDGET) {
            break;
        }
    }
    Ok((upper_quartile(&mut rates), (before - start) as f64 / 1e9))
}

/// The upper quartile: a chunk can only be slowed (an interrupt, a
/// neighbour's cache traffic, a migration), never sped up, so the faster
/// chunks are the core's rate; the quartile rather than the maximum keeps
/// one lucky chunk from setting it.
fn upper_quartile(rates: &mut [f64]) -> f64 {
    if rates.is_empty() {
        return 0.0;
    }
    rates.sort_by(f64::total_cmp);
    rates[(rates.len() * 3) / 4]
}

/// The benchmark kernel: a xorshift integer chain feeding a dependent
/// floating-point multiply-add chain, so every iteration waits for the last
/// (no vectorising, no parallel execution units) and its cost is the
/// core's latency, which is what a single-threaded task meets. The result
/// goes through black_box so the optimizer cannot drop the loop; wrapping
/// arithmetic keeps debug overflow checks out of it.
#[inline(never)]
fn kernel(iterations: u64, seed: u64) -> u64 {
    let mut x = seed | 1;
    let mut f = 1.0f64;
    for i in 0..iterations {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        f = f * 0.999_999_9 + (x >> 44) as f64 * 1e-9;
        x = x.wrapping_add(i);
    }
    x ^ f.to_bits()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_of_a_core_is_that_share_for_one_thread() {
        let s = Speed::from_core(1.2, 0.25);
        assert!((s.per_thread - 0.3).abs() < 1e-12);
        assert!((s.capacity - 0.3).abs() < 1e-12);
        assert_eq!(s.cpu_count, 1);
    }

    #[test]
    fn more_than_a_core_speeds_up_the_node_not_one_thread() {
        let s = Speed::from_core(1.0, 1.5);
        assert_eq!(s.per_thread, 1.0);
        assert_eq!(s.capacity, 1.5);
        assert_eq!(s.cpu_count, 2);
        let s = Speed::from_core(0.5, 4.0);
        assert_eq!((s.per_thread, s.capacity, s.cpu_count), (0.5, 2.0, 4));
    }

    #[test]
    fn a_nonsense_limit_counts_as_one_cpu() {
        assert_eq!(Speed::from_core(1.0, 0.0).cpu_limit, 1.0);
        assert_eq!(Speed::from_core(1.0, f64::NAN).cpu_limit, 1.0);
    }

    #[test]
    fn cpu_count_rounds_the_quota_up() {
        assert_eq!(cpu_count(0.25), 1);
        assert_eq!(cpu_count(1.0), 1);
        assert_eq!(cpu_count(1.0000000001), 1);
        assert_eq!(cpu_count(1.5), 2);
        assert_eq!(cpu_count(2.0), 2);
    }

    #[test]
    fn the_quartile_ignores_slowed_chunks_and_one_lucky_one() {
        let mut rates = vec![1.0, 0.5, 1.0, 1.0, 0.2, 1.0, 1.0, 9.0];
        assert_eq!(upper_quartile(&mut rates), 1.0);
        assert_eq!(upper_quartile(&mut []), 0.0);
    }

    #[test]
    fn the_kernel_is_deterministic() {
        assert_eq!(kernel(1000, 3), kernel(1000, 3));
        assert_ne!(kernel(1000, 3), kernel(1000, 5));
    }

    #[test]
    fn measuring_reads_a_plausible_core() {
        let s = measure();
        assert!(s.core > 0.05 && s.core < 20.0, "{s:?}");
        assert!(
            s.per_thread <= s.core + 1e-9 && s.capacity >= s.per_thread - 1e-9,
            "{s:?}"
        );
        assert!(s.cpu_secs > 0.0 && s.cpu_secs < 1.0, "{s:?}");
    }
}
