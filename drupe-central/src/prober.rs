//! The probe rounds and the silence check, in the background of drupe-central.

use crate::{model, Central};
use jupiter_common::proto::drupe::central::v1::LinkProfile;
use jupiter_common::proto::drupe::droplet::v1::drupe_droplet_client::DrupeDropletClient;
use jupiter_common::proto::drupe::droplet::v1::{LinkMeasurement, ProbeRequest};
use jupiter_common::serve;
use std::time::Duration;

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
    loop {
        tokio::select! {
            _ = central.inner.wake.notified() => {
                tokio::time::sleep(SETTLE).await;
            }
            _ = tokio::time::sleep(config.probe_interval) => {}
        }
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
    for step in 1..n {
        for batch in step_batches(n, step) {
            let probes = batch.into_iter().map(|i| {
                let (from, from_address) = &nodes[i];
                let (to, to_address) = &nodes[(i + step) % n];
                probe(central, from, from_address, to, to_address)
            });
            futures::future::join_all(probes).await;
        }
    }
    central.finish_round();
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

async fn probe(central: &Central, from: &str, from_address: &str, to: &str, to_address: &str) {
    let config = &central.inner.config;
    let request = ProbeRequest {
        peer: to.to_string(),
        peer_address: to_address.to_string(),
        sizes: config.probe_sizes.clone(),
        repeats: config.probe_repeats,
        echoes: config.echoes,
        timeout_secs: config.probe_timeout.as_secs_f64(),
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
    let measurement = match tokio::time::timeout(config.probe_timeout + Duration::from_secs(5), asked).await {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => failed(from, to, format!("{from}'s droplet did not answer: {e}")),
        Err(_) => failed(from, to, format!("{from}'s droplet did not answer in time")),
    };
    central.record_link(profile_of(measurement, central.previous_probes(from, to)));
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

fn profile_of(m: LinkMeasurement, previous_probes: u32) -> LinkProfile {
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
    let fitted = model::fit(&m.samples);
    let bandwidth = model::bandwidth(fitted.as_ref(), &m.samples);
    LinkProfile {
        from: m.from,
        to: m.to,
        reachable: true,
        latency_ms: m.rtt_ms,
        bandwidth_bytes_per_sec: bandwidth,
        model: Some(
            fitted.unwrap_or(jupiter_common::proto::drupe::central::v1::TransferModel {
                quadratic: 0.0,
                linear: if bandwidth > 0.0 { 1.0 / bandwidth } else { 0.0 },
                constant: m.rtt_ms / 1000.0,
            }),
        ),
        measured_at_unix_millis: m.measured_at_unix_millis,
        probes: previous_probes + 1,
        error: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::step_batches;
    use std::collections::BTreeSet;

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
