//! Time to a complete first DRUPE profile of N nodes on loopback, and the
//! probe traffic a node sends per probe interval.
//!
//! drupe-central and N droplets run in this process, each a real gRPC
//! server on its own loopback port, with central's default probe settings.
//! The clock starts when the droplets start (central is already up) and
//! stops when central reports every ordered pair measured.

use anyhow::{bail, Result};
use clap::Parser;
use drupe_central::Config as CentralConfig;
use drupe_droplet::Config as DropletConfig;
use jupiter_common::proto::drupe::central::v1::drupe_central_client::DrupeCentralClient;
use jupiter_common::proto::drupe::central::v1::ProfileRequest;
use jupiter_common::serve::{channel, url_of, wait_healthy};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(about = "Time to a complete first DRUPE profile of N loopback nodes, and probe traffic per node")]
struct Args {
    /// Node counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "4,8,16")]
    nodes: Vec<usize>,
    /// Repetitions per node count.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

async fn first_profile(n: usize) -> Result<Duration> {
    let dir = tempfile::tempdir()?;
    let stop = CancellationToken::new();
    let config = CentralConfig::new(dir.path().join("central.redb"));
    let central = TcpListener::bind("127.0.0.1:0").await?;
    let central_url = url_of(&central)?;
    tokio::spawn(drupe_central::serve(
        config,
        central,
        stop.clone().cancelled_owned(),
    ));
    wait_healthy("drupe-central", &central_url, Duration::from_secs(10)).await?;
    let mut listeners = Vec::new();
    for _ in 0..n {
        listeners.push(TcpListener::bind("127.0.0.1:0").await?);
    }
    let started = Instant::now();
    for (i, listener) in listeners.into_iter().enumerate() {
        let config = DropletConfig {
            telemetry: jupiter_common::telemetry::Settings::off(jupiter_common::role::Role::DrupeDroplet),
            node: format!("node{i}"),
            central: central_url.clone(),
            report_interval: Duration::from_secs(5),
            advertise: Some(url_of(&listener)?),
            data_dir: None,
        };
        tokio::spawn(drupe_droplet::serve(
            config,
            listener,
            stop.clone().cancelled_owned(),
        ));
    }
    let mut client = DrupeCentralClient::new(channel(&central_url)?);
    loop {
        let profile = client.get_network_profile(ProfileRequest {}).await?.into_inner();
        if profile.complete && profile.nodes.len() == n {
            if profile.links.len() != n * (n - 1) {
                bail!("{} links for {n} nodes", profile.links.len());
            }
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("no complete profile of {n} nodes after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    stop.cancel();
    Ok(took)
}

/// Bytes one node sends per probe interval with central's defaults: to each
/// of its n-1 peers, the echoes (plus the connection-opening one) and
/// every payload size `repeats` times; it receives as much.
fn probe_bytes_per_node(n: usize, config: &CentralConfig) -> u64 {
    let echo = 2 * drupe_droplet::probe::ECHO_BYTES as u64 * (config.echoes as u64 + 1);
    let payload: u64 = config.probe_sizes.iter().sum::<u64>() * config.probe_repeats as u64;
    (n as u64 - 1) * (payload + echo)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let defaults = CentralConfig::new("unused".into());
    let mut rows = Vec::new();
    for &n in &args.nodes {
        if n < 2 {
            bail!("--nodes: a profile needs at least 2 nodes, got {n}");
        }
        let mut times = Vec::new();
        for _ in 0..args.reps {
            times.push(first_profile(n).await?.as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let bytes = probe_bytes_per_node(n, &defaults);
        let per_sec = bytes as f64 / defaults.probe_interval.as_secs_f64();
        rows.push((n, times, bytes, per_sec));
    }
    if args.json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(n, t, b, s)| {
                serde_json::json!({"nodes": n, "first_profile_secs": t, "median_secs": t[t.len() / 2],
                    "probe_bytes_sent_per_node_per_interval": b, "probe_bytes_per_sec_per_node": s})
            })
            .collect();
        println!("{}", serde_json::json!({ "rows": rows }));
        return Ok(());
    }
    println!(
        "DRUPE first profile on loopback ({} cores; probe sizes {:?} x{} repeats, {} echoes, interval {:?})",
        jupiter_bench::machine()["cores"],
        defaults.probe_sizes,
        defaults.probe_repeats,
        defaults.echoes,
        defaults.probe_interval
    );
    println!(
        "{:>5}  {:>10}  {:>10}  {:>10}  {:>22}  {:>16}",
        "NODES", "MEDIAN s", "MIN s", "MAX s", "SENT/NODE/INTERVAL MB", "AVG kB/s/NODE"
    );
    for (n, t, bytes, per_sec) in &rows {
        println!(
            "{:>5}  {:>10.2}  {:>10.2}  {:>10.2}  {:>22.2}  {:>16.1}",
            n,
            t[t.len() / 2],
            t[0],
            t[t.len() - 1],
            *bytes as f64 / 1e6,
            per_sec / 1e3
        );
    }
    println!("target: a full first profile of 16 nodes in under 10 s");
    Ok(())
}
