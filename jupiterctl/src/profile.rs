//! `jupiterctl profile`: the network and resource profile that DRUPE
//! measured, as a link matrix and a node table, or as JSON for scripts.

use jupiter_common::clock::unix_nanos;
use jupiter_common::proto::drupe::central::v1::drupe_central_client::DrupeCentralClient;
use jupiter_common::proto::drupe::central::v1::{NetworkProfile, ProfileRequest, ResourceProfile};
use jupiter_common::serve;
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Serialize)]
pub struct Profile {
    pub complete: bool,
    pub rounds: u64,
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
}

#[derive(Debug, Serialize)]
pub struct Node {
    pub node: String,
    pub reachable: bool,
    pub address: String,
    pub cpu_count: u32,
    pub cpu_load: f64,
    /// One task's speed, 1.0 = a full reference core (0 = not measured).
    pub speed: f64,
    /// CPUs the node may use (its quota, fractional).
    pub cpu_limit: f64,
    /// All the node's threads together, in speed's unit.
    pub capacity: f64,
    pub memory_free_bytes: u64,
    pub memory_total_bytes: u64,
    pub disk_free_bytes: u64,
    pub disk_total_bytes: u64,
    pub age_secs: f64,
}

#[derive(Debug, Serialize)]
pub struct Link {
    pub from: String,
    pub to: String,
    pub reachable: bool,
    pub bandwidth_bytes_per_sec: f64,
    pub bandwidth_mbit_per_sec: f64,
    pub latency_ms: f64,
    pub model: Model,
    pub age_secs: f64,
    pub probes: u32,
    pub error: String,
    /// RMS relative residual of the fit (0.05: 5% off the line).
    pub residual: f64,
    /// False: the bandwidth is a lower bound, and `note` says why.
    pub trusted: bool,
    pub note: String,
    pub largest_probe_bytes: u64,
    pub largest_probe_secs: f64,
}

#[derive(Debug, Serialize)]
pub struct Model {
    pub quadratic: f64,
    pub linear: f64,
    pub constant: f64,
}

fn age_secs(unix_millis: i64) -> f64 {
    ((unix_nanos() / 1_000_000 - unix_millis).max(0)) as f64 / 1000.0
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("drupe-central address {address}: {source}")]
    Address {
        address: String,
        source: tonic::transport::Error,
    },
    #[error("drupe-central at {address}: {}", .status.message())]
    Call { address: String, status: tonic::Status },
}

/// Asks drupe-central at `address` for both profiles.
pub async fn fetch(address: &str) -> Result<Profile, ProfileError> {
    let channel = serve::channel(address).map_err(|source| ProfileError::Address {
        address: address.to_string(),
        source,
    })?;
    let mut client = DrupeCentralClient::new(channel);
    let ask = |status: tonic::Status| ProfileError::Call {
        address: address.to_string(),
        status,
    };
    let network: NetworkProfile = client
        .get_network_profile(ProfileRequest {})
        .await
        .map_err(ask)?
        .into_inner();
    let resources: ResourceProfile = client
        .get_resource_profile(ProfileRequest {})
        .await
        .map_err(ask)?
        .into_inner();
    Ok(Profile {
        complete: network.complete,
        rounds: network.rounds,
        nodes: resources
            .nodes
            .into_iter()
            .map(|n| Node {
                age_secs: age_secs(n.measured_at_unix_millis),
                node: n.node,
                reachable: n.reachable,
                address: n.address,
                cpu_count: n.cpu_count,
                cpu_load: n.cpu_load,
                speed: n.speed,
                cpu_limit: n.cpu_limit,
                capacity: n.capacity,
                memory_free_bytes: n.memory_free_bytes,
                memory_total_bytes: n.memory_total_bytes,
                disk_free_bytes: n.disk_free_bytes,
                disk_total_bytes: n.disk_total_bytes,
            })
            .collect(),
        links: network
            .links
            .into_iter()
            .map(|l| {
                let model = l.model.unwrap_or_default();
                Link {
                    age_secs: age_secs(l.measured_at_unix_millis),
                    bandwidth_mbit_per_sec: l.bandwidth_bytes_per_sec * 8.0 / 1e6,
                    bandwidth_bytes_per_sec: l.bandwidth_bytes_per_sec,
                    from: l.from,
                    to: l.to,
                    reachable: l.reachable,
                    latency_ms: l.latency_ms,
                    model: Model {
                        quadratic: model.quadratic,
                        linear: model.linear,
                        constant: model.constant,
                    },
                    probes: l.probes,
                    error: l.error,
                    residual: l.residual,
                    trusted: l.trusted,
                    note: l.note,
                    largest_probe_bytes: l.largest_probe_bytes,
                    largest_probe_secs: l.largest_probe_secs,
                }
            })
            .collect(),
    })
}

/// Bandwidth matrix (Mbit/s, row = from), latency matrix (ms) and the nodes.
pub fn render(profile: &Profile) -> String {
    let names: Vec<&str> = profile.nodes.iter().map(|n| n.node.as_str()).collect();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(4).max(9);
    let cell = |from: &str, to: &str, f: &dyn Fn(&Link) -> String| -> String {
        if from == to {
            return "-".into();
        }
        match profile.links.iter().find(|l| l.from == from && l.to == to) {
            None => "?".into(),
            Some(l) if !l.reachable => "DOWN".into(),
            Some(l) => f(l),
        }
    };
    let mut out = format!(
        "profile {} after {} round(s)\n",
        if profile.complete {
            "complete"
        } else {
            "INCOMPLETE"
        },
        profile.rounds
    );
    let matrix = |out: &mut String, title: &str, f: &dyn Fn(&Link) -> String| {
        let _ = write!(out, "\n{title:<width$}");
        for to in &names {
            let _ = write!(out, " {to:>width$}");
        }
        out.push('\n');
        for from in &names {
            let _ = write!(out, "{from:<width$}");
            for to in &names {
                let _ = write!(out, " {:>width$}", cell(from, to, f));
            }
            out.push('\n');
        }
    };
    // "≥": an untrusted link's bandwidth is only a lower bound.
    matrix(&mut out, "Mbit/s", &|l| {
        let bound = if l.trusted { "" } else { "≥" };
        format!("{bound}{:.1}", l.bandwidth_mbit_per_sec)
    });
    matrix(&mut out, "RTT ms", &|l| format!("{:.2}", l.latency_ms));
    matrix(&mut out, "age s", &|l| format!("{:.0}", l.age_secs));
    render_links(&mut out, profile);
    let _ = writeln!(
        out,
        "\n{:<width$}  {:<9}  {:>5}  {:>5}  {:>5}  {:>15}  {:>15}  {:>6}",
        "NODE", "STATE", "SPEED", "CPUS", "LOAD", "MEM FREE/TOTAL", "DISK FREE/TOTAL", "AGE s"
    );
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    for n in &profile.nodes {
        let _ = writeln!(
            out,
            "{:<width$}  {:<9}  {:>5}  {:>5}  {:>5.2}  {:>15}  {:>15}  {:>6.0}",
            n.node,
            if n.reachable { "reachable" } else { "DOWN" },
            crate::status::speed_cell(n.speed),
            crate::status::cpus_cell(n.cpu_limit, n.cpu_count),
            n.cpu_load,
            format!(
                "{:.1}/{:.1} GiB",
                gib(n.memory_free_bytes),
                gib(n.memory_total_bytes)
            ),
            format!("{:.0}/{:.0} GiB", gib(n.disk_free_bytes), gib(n.disk_total_bytes)),
            n.age_secs
        );
    }
    for l in profile.links.iter().filter(|l| !l.error.is_empty()) {
        let _ = writeln!(out, "{} -> {}: {}", l.from, l.to, l.error);
    }
    out
}

/// One row per reachable link: bandwidth (a lower bound, marked, when the
/// measurement cannot support more), RTT, fit residual and the largest
/// probe, so a suspicious number can be told from a measured one.
fn render_links(out: &mut String, profile: &Profile) {
    let _ = writeln!(
        out,
        "\n{:<24}  {:>16}  {:>8}  {:>8}  {:>19}",
        "LINK", "BANDWIDTH", "RTT ms", "RESIDUAL", "LARGEST PROBE"
    );
    for l in profile.links.iter().filter(|l| l.reachable) {
        let bandwidth = format!(
            "{}{:.0} Mbit/s",
            if l.trusted { "" } else { "≥ " },
            l.bandwidth_mbit_per_sec
        );
        let largest = format!(
            "{:.1} MiB in {:.1} ms",
            l.largest_probe_bytes as f64 / (1u64 << 20) as f64,
            l.largest_probe_secs * 1000.0
        );
        let _ = write!(
            out,
            "{:<24}  {bandwidth:>16}  {:>8.2}  {:>7.1}%  {largest:>19}",
            format!("{} -> {}", l.from, l.to),
            l.latency_ms,
            l.residual * 100.0
        );
        if !l.trusted {
            let _ = write!(out, "  (untrusted: {})", l.note);
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(to: &str, mbit: f64, trusted: bool, note: &str) -> Link {
        Link {
            from: "a".into(),
            to: to.into(),
            reachable: true,
            bandwidth_bytes_per_sec: mbit * 1e6 / 8.0,
            bandwidth_mbit_per_sec: mbit,
            latency_ms: 0.06,
            model: Model {
                quadratic: 0.0,
                linear: 8.0 / (mbit * 1e6),
                constant: 0.0,
            },
            age_secs: 1.0,
            probes: 2,
            error: String::new(),
            residual: 0.05,
            trusted,
            note: note.into(),
            largest_probe_bytes: 32 << 20,
            largest_probe_secs: 0.025,
        }
    }

    /// An untrusted bandwidth is shown as a lower bound with its reason.
    #[test]
    fn link_table_marks_untrusted_links() {
        let profile = Profile {
            complete: true,
            rounds: 1,
            nodes: Vec::new(),
            links: vec![
                link("b", 10_000.0, true, ""),
                link("c", 950.0, false, "largest probe 64 MiB took 3 ms < 10 × RTT"),
            ],
        };
        let out = render(&profile);
        let row = |to: &str| {
            out.lines()
                .find(|l| l.starts_with(&format!("a -> {to}")))
                .unwrap_or_default()
                .to_string()
        };
        assert!(
            row("b").contains("10000 Mbit/s") && !row("b").contains('≥'),
            "{out}"
        );
        assert!(
            row("b").contains("5.0%") && row("b").contains("32.0 MiB in 25.0 ms"),
            "{out}"
        );
        assert!(
            row("c").contains("≥ 950 Mbit/s")
                && row("c").ends_with("(untrusted: largest probe 64 MiB took 3 ms < 10 × RTT)"),
            "{out}"
        );
        let json = serde_json::to_value(&profile.links[1]).expect("json");
        assert_eq!(json["trusted"], false);
        assert_eq!(json["residual"], 0.05);
        assert!(json["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("largest probe")));
    }
}
