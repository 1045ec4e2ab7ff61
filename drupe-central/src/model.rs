//! The transfer-time model of a link, fitted from probe samples.
//!
//! The original Jupiter fitted `time = a·size² + b·size + c` per link. With a
//! handful of sizes a quadratic fits the noise: it can bend down and predict
//! that a larger transfer is faster, or negative times beyond the sampled
//! range. Moving bytes over a link costs a fixed setup (latency, handshakes)
//! plus a time per byte, so we fit the affine model `time = b·size + c` by
//! least squares (the quadratic term is kept in the wire format, and is 0).
//! Its slope is the inverse bandwidth; a scheduler can extrapolate it safely.

use jupiter_common::proto::drupe::central::v1::TransferModel;
use jupiter_common::proto::drupe::droplet::v1::SizeSample;

/// Least-squares fit; `None` without two distinct sizes or with a slope
/// that is not positive (then bandwidth is taken from the largest sample).
pub fn fit(samples: &[SizeSample]) -> Option<TransferModel> {
    let points: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.seconds.is_finite() && s.seconds > 0.0)
        .map(|s| (s.bytes as f64, s.seconds))
        .collect();
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    if slope <= 0.0 || !slope.is_finite() {
        return None;
    }
    Some(TransferModel {
        quadratic: 0.0,
        linear: slope,
        constant: (mean_y - slope * mean_x).max(0.0),
    })
}

/// Bytes per second of a link: the inverse slope of its model, or, when no
/// model fits, the throughput of the largest sample.
pub fn bandwidth(model: Option<&TransferModel>, samples: &[SizeSample]) -> f64 {
    if let Some(m) = model {
        if m.linear > 0.0 {
            return 1.0 / m.linear;
        }
    }
    samples
        .iter()
        .filter(|s| s.seconds > 0.0)
        .max_by_key(|s| s.bytes)
        .map_or(0.0, |s| s.bytes as f64 / s.seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(bytes: u64, seconds: f64) -> SizeSample {
        SizeSample { bytes, seconds }
    }

    #[test]
    fn recovers_latency_and_bandwidth() {
        // 2 ms setup, 1 MB/s.
        let samples: Vec<_> = [10_000u64, 100_000, 1_000_000]
            .iter()
            .map(|&b| sample(b, 0.002 + b as f64 / 1e6))
            .collect();
        let m = fit(&samples).unwrap();
        assert!((m.linear - 1e-6).abs() < 1e-12, "{m:?}");
        assert!((m.constant - 0.002).abs() < 1e-9, "{m:?}");
        assert!((bandwidth(Some(&m), &samples) - 1e6).abs() < 1.0);
    }

    #[test]
    fn degenerate_samples_fall_back_to_the_largest() {
        assert!(fit(&[sample(1000, 0.1)]).is_none());
        assert!(fit(&[sample(1000, 0.1), sample(1000, 0.2)]).is_none());
        // Bigger was faster: noise, not a model.
        let noisy = [sample(1000, 0.2), sample(100_000, 0.1)];
        assert!(fit(&noisy).is_none());
        assert_eq!(bandwidth(None, &noisy), 1e6);
    }
}
