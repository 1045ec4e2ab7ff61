//! The transfer-time model of a link, fitted from probe samples, and how
//! far it can be trusted.
//!
//! The original Jupiter fitted `time = a·size² + b·size + c` per link. With a
//! handful of sizes a quadratic fits the noise: it can bend down and predict
//! that a larger transfer is faster, or negative times beyond the sampled
//! range. Moving bytes over a link costs a fixed setup (latency, handshakes)
//! plus a time per byte, so we fit the affine model `time = b·size + c` by
//! least squares (the quadratic term is kept in the wire format, and is 0).
//! Its slope is the inverse bandwidth; a scheduler can extrapolate it safely.
//!
//! Which samples: the line goes through the shortest and the longest
//! transfer (each the fastest of its repeats). The longest one, lasting
//! many round trips, fixes the time per byte; the shortest is almost all
//! fixed cost and fixes `c`. Least squares over every sample was the first
//! choice and is worse on fast links: a small payload is per-call overhead
//! and timer jitter (on a multi-Gbit link 128 KiB moves in ~100 µs, below
//! the round trip), and a slope through such points is noise (one Docker
//! bridge read 961 to 109,815 Mbit/s on identical links that way); even
//! among large samples a slope from differences of noisy times is two to
//! three times noisier than one long transfer. The samples in between test
//! the line: the residual is taken over the *upper* samples, those of at
//! least 1/[`UPPER_FRACTION`] of the largest size, where a point off the
//! line means a disturbed transfer, not overhead.
//!
//! Trust: a link is trusted when the fit has two distinct sizes, its
//! largest transfer lasted at least [`RTT_FACTOR`] round trips and the
//! configured minimum time, the upper samples lie on the line (RMS relative
//! residual below [`RESIDUAL_LIMIT`]), and the fitted bandwidth is at most
//! [`MAX_OVER_LARGEST`] times the largest sample's throughput. Otherwise the
//! bandwidth is a lower bound, and the note says why in words: every
//! transfer's throughput (bytes / seconds) is one, as the link moved that
//! much and paid the fixed cost besides, so the best of the upper samples'
//! is taken (a small one's time is mostly jitter).
//! That is the largest transfer's, unless a busy CPU or cross traffic
//! slowed it; then a smaller one's, at most [`MAX_OVER_LARGEST`] times the
//! largest's (on a loaded Docker host one link read 4.2 Gbit/s from a
//! disturbed 32 MiB transfer beside five at 10-12).

use jupiter_common::proto::drupe::central::v1::TransferModel;
use jupiter_common::proto::drupe::droplet::v1::SizeSample;

/// Samples at least `largest / UPPER_FRACTION` bytes are fitted.
pub const UPPER_FRACTION: u64 = 8;
/// A transfer is timed well once it lasts this many round trips (the
/// droplet's adaptive probing aims for the same).
pub const RTT_FACTOR: f64 = 10.0;
/// Above this RMS relative residual (20%) the upper samples do not lie on
/// one line: cross traffic or a busy CPU disturbed them, or the link is not
/// linear in that range. On a Docker host busy with parallel builds most
/// links stayed within 4-20%; those above had a transfer 2-3× too slow.
pub const RESIDUAL_LIMIT: f64 = 0.2;
/// The fitted bandwidth may exceed the largest sample's throughput by this
/// factor at most (it does by a little, as the fixed cost is taken out).
pub const MAX_OVER_LARGEST: f64 = 2.0;

/// What a link's samples say: the model, the bandwidth to use, and whether
/// it can be trusted.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub model: TransferModel,
    /// Bytes per second; always `1 / model.linear` (0 without samples).
    pub bandwidth: f64,
    /// RMS relative residual of the upper samples (0 with two sizes).
    pub residual: f64,
    pub trusted: bool,
    /// Why the link is not trusted, in words; empty when it is.
    pub note: String,
    pub largest: Option<SizeSample>,
}

/// How long a transfer must last to be timed well.
pub fn target_secs(min_secs: f64, rtt_secs: f64) -> f64 {
    min_secs.max(RTT_FACTOR * rtt_secs)
}

/// The line through the smallest and the largest point: (slope,
/// intercept), or `None` without two distinct sizes.
fn extremes_line(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    // The fastest transfer of the smallest and of the largest size.
    let pick =
        |better: fn(&(f64, f64), &(f64, f64)) -> std::cmp::Ordering| points.iter().copied().min_by(better);
    let small = pick(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)))?;
    let large = pick(|a, b| b.0.total_cmp(&a.0).then(a.1.total_cmp(&b.1)))?;
    if large.0 <= small.0 {
        return None;
    }
    let slope = (large.1 - small.1) / (large.0 - small.0);
    slope.is_finite().then_some((slope, small.1 - slope * small.0))
}

/// The samples the residual is taken over: those of at least
/// `largest / UPPER_FRACTION` bytes, widened to the two largest sizes.
fn upper(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut sizes: Vec<f64> = points.iter().map(|p| p.0).collect();
    sizes.sort_by(|a, b| b.total_cmp(a));
    sizes.dedup();
    let Some(&largest) = sizes.first() else {
        return Vec::new();
    };
    let floor = (largest / UPPER_FRACTION as f64).min(sizes.get(1).copied().unwrap_or(largest));
    points.iter().copied().filter(|p| p.0 >= floor).collect()
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b.is_multiple_of(1 << 20) => format!("{} MiB", b >> 20),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.0} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

fn mbit(bytes_per_sec: f64) -> String {
    format!("{:.0} Mbit/s", bytes_per_sec * 8.0 / 1e6)
}

/// Fits the samples of one link probe whose echoes took `rtt_secs`;
/// `min_secs` is the shortest transfer central asked for (0 if none).
pub fn assess(samples: &[SizeSample], rtt_secs: f64, min_secs: f64) -> Assessment {
    let points: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.bytes > 0 && s.seconds.is_finite() && s.seconds > 0.0)
        .map(|s| (s.bytes as f64, s.seconds))
        .collect();
    // The largest size, at its fastest.
    let largest = samples
        .iter()
        .filter(|s| s.bytes > 0 && s.seconds.is_finite() && s.seconds > 0.0)
        .max_by(|a, b| a.bytes.cmp(&b.bytes).then(b.seconds.total_cmp(&a.seconds)))
        .cloned();
    let Some(big) = largest else {
        return Assessment {
            model: TransferModel {
                quadratic: 0.0,
                linear: 0.0,
                constant: rtt_secs.max(0.0),
            },
            bandwidth: 0.0,
            residual: 0.0,
            trusted: false,
            note: "no payload was timed; bandwidth unknown".into(),
            largest: None,
        };
    };
    let throughput = big.bytes as f64 / big.seconds;
    let fit = extremes_line(&points);
    let fitted_points = upper(&points);
    let residual = fit.map_or(0.0, |(slope, intercept)| {
        let sum: f64 = fitted_points
            .iter()
            .map(|&(x, y)| ((slope * x + intercept - y) / y).powi(2))
            .sum();
        (sum / fitted_points.len() as f64).sqrt()
    });

    let mut reasons = Vec::new();
    let mut fitted_bandwidth = None;
    match fit {
        None => reasons.push(format!("only one payload size ({})", human_bytes(big.bytes))),
        Some((slope, _)) if slope <= 0.0 => {
            reasons.push("larger payloads were not slower, so the fit has no slope".to_string())
        }
        Some((slope, _)) => {
            let bandwidth = 1.0 / slope;
            if bandwidth > MAX_OVER_LARGEST * throughput {
                reasons.push(format!(
                    "the fit implies {}, over {MAX_OVER_LARGEST}× what the largest probe moved",
                    mbit(bandwidth)
                ));
            } else {
                fitted_bandwidth = Some(bandwidth);
            }
        }
    }
    let round_trips = RTT_FACTOR * rtt_secs;
    if big.seconds < round_trips {
        reasons.push(format!(
            "largest probe {} took {:.2} ms < {RTT_FACTOR} × RTT ({:.2} ms)",
            human_bytes(big.bytes),
            big.seconds * 1000.0,
            round_trips * 1000.0
        ));
    } else if big.seconds < min_secs {
        reasons.push(format!(
            "largest probe {} took {:.2} ms < the minimum {:.0} ms",
            human_bytes(big.bytes),
            big.seconds * 1000.0,
            min_secs * 1000.0
        ));
    }
    if residual > RESIDUAL_LIMIT {
        reasons.push(format!(
            "the probes are {:.0}% off the fitted line (limit {:.0}%)",
            residual * 100.0,
            RESIDUAL_LIMIT * 100.0
        ));
    }
    // Upper samples only: a small one's time is mostly jitter.
    let best_throughput = fitted_points
        .iter()
        .map(|&(x, y)| x / y)
        .fold(throughput, f64::max)
        .min(MAX_OVER_LARGEST * throughput);
    // With a fixed cost ≥ 0 throughput only grows with size: a smaller
    // probe clearly faster than the largest means the largest was slowed,
    // and the line through it is wrong even if it fits the rest.
    if best_throughput > (1.0 + RESIDUAL_LIMIT) * throughput {
        reasons.push(format!(
            "a smaller probe moved {}, more than the largest ({})",
            mbit(best_throughput),
            mbit(throughput)
        ));
    }
    let trusted = reasons.is_empty();
    let bandwidth = match fitted_bandwidth {
        Some(b) if trusted => b,
        _ => best_throughput,
    };
    let note = if trusted {
        String::new()
    } else {
        format!(
            "{}; bandwidth is a lower bound (the fastest probe's throughput)",
            reasons.join("; ")
        )
    };
    // The fixed cost per transfer: what the slope leaves of the smallest
    // transfer, which is mostly overhead; the round trip without one.
    // (For a trusted link this is the fitted intercept.)
    let smallest = points
        .iter()
        .copied()
        .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let constant = match smallest {
        Some((x, y)) if x < big.bytes as f64 => (y - x / bandwidth).max(0.0),
        _ => rtt_secs.max(0.0),
    };
    Assessment {
        model: TransferModel {
            quadratic: 0.0,
            linear: 1.0 / bandwidth,
            constant,
        },
        bandwidth,
        residual,
        trusted,
        note,
        largest: Some(big),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(bytes: u64, seconds: f64) -> SizeSample {
        SizeSample { bytes, seconds }
    }

    const MIB: u64 = 1 << 20;

    #[test]
    fn clean_slow_link_is_trusted() {
        // 2 ms setup, 1 MB/s, round trip 2 ms.
        let samples: Vec<_> = [10_000u64, 100_000, 1_000_000]
            .iter()
            .map(|&b| sample(b, 0.002 + b as f64 / 1e6))
            .collect();
        let a = assess(&samples, 0.002, 0.02);
        assert!(a.trusted, "{a:?}");
        assert!(a.note.is_empty());
        assert!((a.bandwidth - 1e6).abs() < 1.0, "{a:?}");
        assert!((a.model.linear - 1e-6).abs() < 1e-12, "{a:?}");
        assert!((a.model.constant - 0.002).abs() < 1e-9, "{a:?}");
        assert!(a.residual < 1e-9, "{a:?}");
        assert_eq!(a.largest, Some(sample(1_000_000, 1.002)));
    }

    #[test]
    fn noisy_fast_link_is_an_untrusted_lower_bound() {
        // The old defaults on a Docker bridge: 16 and 128 KiB in a fraction
        // of a millisecond, round trip 0.15 ms. The slope says over 20 Gbit/s.
        let samples = [sample(16 * 1024, 0.00030), sample(128 * 1024, 0.00034)];
        let a = assess(&samples, 0.00015, 0.02);
        assert!(!a.trusted, "{a:?}");
        let throughput = 128.0 * 1024.0 / 0.00034;
        assert_eq!(a.bandwidth, throughput);
        assert!(a.note.contains("the fit implies"), "{}", a.note);
        assert!(
            a.note.contains("largest probe 128 KiB took 0.34 ms < 10 × RTT"),
            "{}",
            a.note
        );
        assert!(a
            .note
            .ends_with("bandwidth is a lower bound (the fastest probe's throughput)"));
        assert!((1.0 / a.model.linear - a.bandwidth).abs() < 1e-3);
    }

    #[test]
    fn the_cap_holds_the_size_limit_note() {
        // 64 MiB, the cap, still only 3 ms: a lower bound, said so.
        let samples = [sample(32 * MIB, 0.0016), sample(64 * MIB, 0.0031)];
        let a = assess(&samples, 0.001, 0.02);
        assert!(!a.trusted);
        assert!(
            a.note
                .starts_with("largest probe 64 MiB took 3.10 ms < 10 × RTT (10.00 ms)"),
            "{}",
            a.note
        );
        assert!(a.bandwidth <= 64.0 * MIB as f64 / 0.0031 + 1.0);
    }

    #[test]
    fn slope_comes_from_the_longest_transfer() {
        // 1 Gbit/s with 0.2 ms overhead; the small ones are jittery (one
        // 3× too slow), which may move the slope by a few percent at most
        // and must not cost the trust.
        let time = |b: u64| 0.0002 + b as f64 / 1.25e8;
        let mut samples = vec![
            sample(16 * 1024, 0.0009),
            sample(128 * 1024, time(128 * 1024) * 0.7),
        ];
        for b in [MIB, 2 * MIB, 4 * MIB] {
            samples.push(sample(b, time(b)));
        }
        let a = assess(&samples, 0.0002, 0.02);
        assert!(a.trusted, "{a:?}");
        assert!((a.bandwidth / 1.25e8 - 1.0).abs() < 0.03, "{a:?}");
        assert!(a.residual < 0.05, "{a:?}");
    }

    #[test]
    fn scattered_large_samples_are_untrusted() {
        let samples = [
            sample(4 * MIB, 0.040),
            sample(8 * MIB, 0.030),
            sample(16 * MIB, 0.110),
        ];
        let a = assess(&samples, 0.0002, 0.02);
        assert!(!a.trusted, "{a:?}");
        assert!(a.residual > RESIDUAL_LIMIT, "{a:?}");
        assert!(a.note.contains("off the fitted line"), "{}", a.note);
        // The best lower bound: 8 MiB in 30 ms, not the slow 16 MiB.
        assert_eq!(a.bandwidth, 8.0 * MIB as f64 / 0.030);
    }

    #[test]
    fn degenerate_samples_fall_back_to_the_largest() {
        let one = assess(&[sample(1000, 0.1)], 0.001, 0.0);
        assert!(!one.trusted && one.note.starts_with("only one payload size"));
        assert_eq!(one.bandwidth, 10_000.0);
        // Bigger was faster: noise, not a model.
        let noisy = [sample(1000, 0.2), sample(100_000, 0.1)];
        let a = assess(&noisy, 0.001, 0.0);
        assert!(!a.trusted && a.note.contains("not slower"), "{a:?}");
        assert_eq!(a.bandwidth, 1e6);
        // The largest was slowed: a smaller one's throughput, capped.
        let slowed = assess(&[sample(8 * MIB, 0.01), sample(16 * MIB, 0.1)], 0.001, 0.02);
        assert!(
            !slowed.trusted && slowed.note.contains("a smaller probe moved"),
            "{slowed:?}"
        );
        assert_eq!(slowed.bandwidth, 2.0 * 16.0 * MIB as f64 / 0.1);
        let none = assess(&[], 0.001, 0.0);
        assert_eq!((none.bandwidth, none.trusted), (0.0, false));
    }
}
