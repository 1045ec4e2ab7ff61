//! The probe rounds and the silence check, in the background of drupe-central.

use crate::{model, Central};
use jupiter_common::proto::drupe::central::v1::LinkProfile;
use jupiter_common::proto::drupe::droplet::v1::drupe_droplet_client::DrupeDropletClient;
use jupiter_common::proto::drupe::droplet::v1::{LinkMeasurement, ProbeRequest};
use jupiter_common::serve;
use opentelemetry::trace::{FutureExt as _, SpanKind};
use opentelemetry::{Context, KeyValue};
use std::time::{Duration, SystemTime};

/// Nodes that register together are probed together: after a wake-up the
/// prober waits this long for more to arrive.
const SETTLE: Duration = Duration::from_millis(200);

pub async fn run(central: Central) {
    let config = central.inner.config.clone();
    let check_every = (config.unreachable_after / 4).max(Duration::from_millis(100));
    let silence = {
        let central = central.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(check_every).await;
                central.check_silence();
            }
        })
    };
    let _silence = AbortOnDrop(silence);
    let arrivals = || central.inner.arrivals.load(std::sync::atomic::Ordering::SeqCst);
    let mut probed = None;
    loop {
        let woken = tokio::select! {
            _ = central.inner.wake.notified() => true,
            _ = tokio::time::sleep(config.probe_interval) => false,
        };
        if woken {
            tokio::time::sleep(SETTLE).await;
            // Nodes arriving one by one during a round leave a wake-up
            // behind; a second round right away would probe the same nodes
            // again, under the first inputs of a new deployment.
            if probed == Some(arrivals()) {
                continue;
            }
        }
        probed = Some(arrivals());
        round(&central).await;
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One round over every ordered pair, in N-1 collision-free steps.
async fn round(central: &Central) {
    let nodes = central.probe_targets();
    let n = nodes.len();
    if n < 2 {
        return;
    }
    let started = std::time::Instant::now();
    // Each round is a trace of its own: one span per link probed under it.
    let telemetry = &central.inner.telemetry;
    let span = telemetry.open(
        "probe round",
        SpanKind::Internal,
        &Context::new(),
        SystemTime::now(),
        vec![KeyValue::new("jupiter.nodes", n as i64)],
    );
    for step in 1..n {
        for batch in step_batches(n, step) {
            let probes = batch.into_iter().map(|i| {
                let (from, from_address) = &nodes[i];
                let (to, to_address) = &nodes[(i + step) % n];
                probe(central, from, from_address, to, to_address).with_context(span.context())
            });
            if central.inner.config.probe_sequential {
                for probe in probes {
                    probe.await;
                }
            } else {
                futures::future::join_all(probes).await;
            }
        }
    }
    central.finish_round();
    // A round cut short (the deployment going down) ends without it.
    span.set(KeyValue::new("jupiter.links", (n * (n - 1)) as i64));
    span.end();
    tracing::info!(nodes = n, took = ?started.elapsed(), "probe round done");
}

/// The senders of step `step` (node i probes node (i + step) mod n), in
/// batches that run one after the other: one batch, unless the step pairs
/// nodes both ways (2·step = n), then the two directions go separately.
pub(crate) fn step_batches(n: usize, step: usize) -> Vec<Vec<usize>> {
    if !(2 * step).is_multiple_of(n) {
        return vec![(0..n).collect()];
    }
    let (first, second) = (0..n).partition(|&i| i < (i + step) % n);
    vec![first, second]
}

/// The payload sizes of a link's next probe. The first probe sends the
/// configured sizes and lets the droplet double from there; once a probe
/// found the size that lasts long enough, later ones send the smallest
/// configured size (for the fixed cost) and that size with its half and
/// quarter (three points on the line, so the residual means something),
/// instead of doubling from scratch every round. A size that took over
/// four times the target is halved: the link got faster or less busy.
pub(crate) fn round_sizes(
    configured: &[u64],
    previous: Option<&LinkProfile>,
    min_secs: f64,
    max_bytes: u64,
) -> Vec<u64> {
    let configured_max = configured.iter().copied().max().unwrap_or(0);
    let Some(previous) = previous.filter(|p| {
        min_secs > 0.0 && p.reachable && p.largest_probe_bytes > configured_max && p.largest_probe_secs > 0.0
    }) else {
        return configured.to_vec();
    };
    let mut last = previous.largest_probe_bytes.min(max_bytes);
    if previous.largest_probe_secs > 4.0 * model::target_secs(min_secs, previous.latency_ms / 1000.0)
        && last / 2 > configured_max
    {
        last /= 2;
    }
    let smallest = configured.iter().copied().min().unwrap_or(last);
    let mut sizes = vec![smallest, last / 4, last / 2, last];
    sizes.retain(|&s| s >= smallest);
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

async fn probe(central: &Central, from: &str, from_address: &str, to: &str, to_address: &str) {
    let config = &central.inner.config;
    let span = central.inner.telemetry.open(
        format!("probe {from}->{to}"),
        SpanKind::Client,
        &Context::current(),
        SystemTime::now(),
        vec![
            KeyValue::new("jupiter.link.from", from.to_string()),
            KeyValue::new("jupiter.link.to", to.to_string()),
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", "jupiter.drupe.droplet.v1.DrupeDroplet"),
            KeyValue::new("rpc.method", "ProbeLink"),
        ],
    );
    let previous = central.previous_link(from, to);
    let request = ProbeRequest {
        peer: to.to_string(),
        peer_address: to_address.to_string(),
        sizes: round_sizes(
            &config.probe_sizes,
            previous.as_ref(),
            config.probe_min_secs,
            config.probe_max_bytes,
        ),
        repeats: config.probe_repeats,
        echoes: config.echoes,
        timeout_secs: config.probe_timeout.as_secs_f64(),
        min_transfer_secs: config.probe_min_secs,
        max_bytes: config.probe_max_bytes,
    };
    let asked = async {
        let mut client = DrupeDropletClient::new(serve::channel(from_address).map_err(|e| e.to_string())?);
        client
            .probe_link(request)
            .await
            .map(|r| r.into_inner())
            .map_err(|s| s.message().to_string())
    };
    // The droplet enforces the probe timeout; this one covers a droplet that hangs.
    let asked = asked.with_context(span.context());
    let measurement = match tokio::time::timeout(config.probe_timeout + Duration::from_secs(5), asked).await {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => failed(from, to, format!("{from}'s droplet did not answer: {e}")),
        Err(_) => failed(from, to, format!("{from}'s droplet did not answer in time")),
    };
    if measurement.error.is_empty() {
        span.set(KeyValue::new("jupiter.link.rtt_ms", measurement.rtt_ms));
    } else {
        span.fail(measurement.error.clone());
    }
    span.end();
    let previous_probes = previous.map_or(0, |p| p.probes);
    central.record_link(profile_of(measurement, previous_probes, config.probe_min_secs));
}

fn failed(from: &str, to: &str, error: String) -> LinkMeasurement {
    LinkMeasurement {
        from: from.to_string(),
        to: to.to_string(),
        measured_at_unix_millis: jupiter_common::clock::unix_nanos() / 1_000_000,
        error,
        ..Default::default()
    }
}

fn profile_of(m: LinkMeasurement, previous_probes: u32, min_secs: f64) -> LinkProfile {
    if !m.error.is_empty() {
        tracing::warn!(from = %m.from, to = %m.to, error = %m.error, "link unreachable");
        return LinkProfile {
            from: m.from,
            to: m.to,
            reachable: false,
            measured_at_unix_millis: m.measured_at_unix_millis,
            probes: previous_probes,
            error: m.error,
            ..Default::default()
        };
    }
    let assessment = model::assess(&m.samples, m.rtt_ms / 1000.0, min_secs);
    if !assessment.trusted {
        tracing::debug!(from = %m.from, to = %m.to, note = %assessment.note, "link not trusted");
    }
    let largest = assessment.largest.unwrap_or_default();
    LinkProfile {
        from: m.from,
        to: m.to,
        reachable: true,
        latency_ms: m.rtt_ms,
        bandwidth_bytes_per_sec: assessment.bandwidth,
        model: Some(assessment.model),
        measured_at_unix_millis: m.measured_at_unix_millis,
        probes: previous_probes + 1,
        error: String::new(),
        residual: assessment.residual,
        trusted: assessment.trusted,
        note: assessment.note,
        largest_probe_bytes: largest.bytes,
        largest_probe_secs: largest.seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::{round_sizes, step_batches};
    use jupiter_common::proto::drupe::central::v1::LinkProfile;
    use std::collections::BTreeSet;

    const KIB: u64 = 1024;
    const MIB: u64 = 1 << 20;

    fn measured(bytes: u64, secs: f64) -> LinkProfile {
        LinkProfile {
            reachable: true,
            latency_ms: 0.2,
            largest_probe_bytes: bytes,
            largest_probe_secs: secs,
            ..Default::default()
        }
    }

    #[test]
    fn later_rounds_start_from_the_size_that_sufficed() {
        let configured = [16 * KIB, 128 * KIB];
        // First probe, or adaptive probing off: the configured sizes.
        assert_eq!(round_sizes(&configured, None, 0.02, 64 * MIB), configured);
        let sufficed = measured(32 * MIB, 0.025);
        assert_eq!(
            round_sizes(&configured, Some(&sufficed), 0.0, 64 * MIB),
            configured
        );
        // Then the smallest, and the size that sufficed with its half and quarter.
        assert_eq!(
            round_sizes(&configured, Some(&sufficed), 0.02, 64 * MIB),
            [16 * KIB, 8 * MIB, 16 * MIB, 32 * MIB]
        );
        // A link that got faster: half of it next time.
        assert_eq!(
            round_sizes(&configured, Some(&measured(32 * MIB, 0.1)), 0.02, 64 * MIB),
            [16 * KIB, 4 * MIB, 8 * MIB, 16 * MIB]
        );
        // A lowered cap is honoured; a slow link needs nothing beyond the configured.
        assert_eq!(
            round_sizes(&configured, Some(&sufficed), 0.02, 4 * MIB),
            [16 * KIB, MIB, 2 * MIB, 4 * MIB]
        );
        assert_eq!(
            round_sizes(&configured, Some(&measured(128 * KIB, 0.5)), 0.02, 64 * MIB),
            configured
        );
        // A link that went down starts over.
        let down = LinkProfile {
            reachable: false,
            ..sufficed
        };
        assert_eq!(round_sizes(&configured, Some(&down), 0.02, 64 * MIB), configured);
    }

    /// Every ordered pair exactly once; within a batch no node sends or
    /// receives twice and no pair runs in both directions.
    #[test]
    fn rounds_cover_every_pair_without_collisions() {
        for n in 2..=9 {
            let mut seen = BTreeSet::new();
            for step in 1..n {
                for batch in step_batches(n, step) {
                    let pairs: Vec<(usize, usize)> = batch.iter().map(|&i| (i, (i + step) % n)).collect();
                    let senders: BTreeSet<_> = pairs.iter().map(|p| p.0).collect();
                    let receivers: BTreeSet<_> = pairs.iter().map(|p| p.1).collect();
                    assert_eq!(senders.len(), pairs.len(), "n={n} step={step}");
                    assert_eq!(receivers.len(), pairs.len(), "n={n} step={step}");
                    for &(a, b) in &pairs {
                        assert!(!pairs.contains(&(b, a)), "n={n} step={step}: {a}<->{b} at once");
                        assert!(seen.insert((a, b)), "n={n}: {a}->{b} twice");
                    }
                }
            }
            assert_eq!(seen.len(), n * (n - 1), "n={n}");
        }
    }
}
