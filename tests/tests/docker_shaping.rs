//! Emulated links on the Docker backend, on the real engine: three nodes
//! at 5, 20 and 50 Mbit, DRUPE's measured bandwidth of every link within
//! 15% of the slower end's rate, the qdiscs on both sides of every node
//! container's veth pair, and nothing of them left after `down`. And, on a
//! kernel without netem, `up` with a `delay` failing before it makes
//! anything. Skipped loudly without an engine or without root.

use jupiter_common::app::App;
use jupiter_tests::docker::{backend_probing, engine_or_skip, ensure_images, inspect, Teardown};
use jupiter_tests::{example, network_profile, random, Sandbox};
use jupiterctl::deployment::{Deployment, ProbeOptions};
use jupiterctl::docker::engine::{Engine, Kind};
use jupiterctl::docker::spec::DEPLOYMENT_LABEL;
use jupiterctl::node_list::NodeSpec;
use std::time::Duration;

/// Shaping enters containers with nsenter: root only.
fn root_or_skip(test: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if !root {
        eprintln!("\n*** SKIPPING {test}: shaping needs root ***\n");
    }
    root
}

fn node(name: &str, mbit: u64) -> NodeSpec {
    NodeSpec {
        name: name.into(),
        cpus: 1.0,
        memory_bytes: 256 << 20,
        bandwidth_bits_per_sec: Some(mbit * 1_000_000),
        delay: None,
    }
}

/// Probe payloads big enough that the shaped rates, not the round trip,
/// decide how long they take (2 MiB at 5 Mbit: about 3.4 s).
fn probing() -> ProbeOptions {
    ProbeOptions {
        interval: Duration::from_secs(2),
        sizes: vec![256 * 1024, 2 * 1024 * 1024],
        ..ProbeOptions::default()
    }
}

/// `tc qdisc show` of a container's eth0, and its host veth peer's name.
async fn qdiscs(engine: &Engine, container: &str) -> (String, String) {
    let pid = inspect(engine, container, "{{.State.Pid}}").await;
    let nsenter = |args: &[&str]| {
        let out = std::process::Command::new("nsenter")
            .args(["-t", &pid, "-n"])
            .args(args)
            .output()
            .expect("nsenter runs");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let inside = nsenter(&["tc", "qdisc", "show", "dev", "eth0"]);
    // `ip`: sysfs would show the host's eth0, not the container's.
    let link = nsenter(&["ip", "-o", "link", "show", "dev", "eth0"]);
    let index = link
        .split_once("@if")
        .and_then(|(_, rest)| rest.split_once(':'))
        .map(|(peer, _)| peer.to_string())
        .unwrap_or_else(|| panic!("eth0 of {container} is not a veth: {link}"));
    let peer = std::fs::read_dir("/sys/class/net")
        .expect("/sys/class/net")
        .flatten()
        .find(|e| {
            std::fs::read_to_string(e.path().join("ifindex"))
                .unwrap_or_default()
                .trim()
                == index
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .expect("the veth peer on the host");
    (inside, peer)
}

fn host_qdiscs_everywhere() -> String {
    let out = std::process::Command::new("tc")
        .args(["qdisc", "show"])
        .output()
        .expect("tc runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn host_qdiscs(dev: &str) -> String {
    let out = std::process::Command::new("tc")
        .args(["qdisc", "show", "dev", dev])
        .output()
        .expect("tc runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drupe_measures_the_shaped_rates_on_docker() {
    let test = "drupe_measures_the_shaped_rates_on_docker";
    let Some(engine) = engine_or_skip(test).await else {
        return;
    };
    if !root_or_skip(test) {
        return;
    }
    ensure_images().await;
    let sandbox = Sandbox::new();
    let app = App::load(&example("dummy_app")).expect("example app loads");
    let nodes = vec![node("edge0", 5), node("edge1", 20), node("cloud0", 50)];
    let rate = |name: &str| {
        nodes
            .iter()
            .find(|n| n.name == name)
            .and_then(|n| n.bandwidth_bits_per_sec)
            .expect("a shaped node") as f64
    };
    let backend = backend_probing(&sandbox, &app, nodes.clone(), probing()).await;
    let deployment = Deployment::up(backend, &app, &random(3))
        .await
        .expect("shaped docker deployment comes up");
    let id = deployment.summary.deployment.clone();
    let _teardown = Teardown(id.clone());

    // Both ends of every node container's veth pair carry the node's tbf;
    // the home roles' do not.
    let mut peers = Vec::new();
    for role in &deployment.summary.roles {
        let container = role.container.clone().expect("a container");
        let (inside, peer) = qdiscs(&engine, &container).await;
        let outside = host_qdiscs(&peer);
        match &role.node {
            Some(node) => {
                let want = format!("rate {}Mbit", rate(node) as u64 / 1_000_000);
                assert!(
                    inside.contains("tbf") && inside.contains(&want),
                    "{container}: {inside}"
                );
                assert!(
                    outside.contains("tbf") && outside.contains(&want),
                    "{container} ({peer}): {outside}"
                );
            }
            None => assert!(!inside.contains("tbf") && !outside.contains("tbf"), "{container}"),
        }
        peers.push(peer);
    }

    // Nothing but the deployment's veths was touched.
    let all = host_qdiscs_everywhere();
    for line in all.lines().filter(|l| l.contains("tbf") || l.contains("netem")) {
        assert!(line.contains(" dev veth"), "a qdisc outside the veths: {line}");
    }

    // Two rounds that started after `up` returned, so after every
    // container was shaped.
    let central = deployment.summary.endpoints().drupe_central.clone();
    let first = network_profile(&central).await.rounds;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let measured = loop {
        let p = network_profile(&central).await;
        if p.rounds >= first + 2 && p.complete && p.links.len() == 6 {
            break p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for two fresh probe rounds: {p:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut off = Vec::new();
    for link in &measured.links {
        let want = rate(&link.from).min(rate(&link.to));
        let got = link.bandwidth_bytes_per_sec * 8.0;
        let ratio = got / want;
        eprintln!(
            "{} -> {}: {:.1} Mbit/s measured, {:.0} Mbit/s set ({:.0}%; rtt {:.2} ms, trusted {})",
            link.from,
            link.to,
            got / 1e6,
            want / 1e6,
            ratio * 100.0,
            link.latency_ms,
            link.trusted
        );
        if !(link.reachable && (ratio - 1.0).abs() <= 0.15) {
            off.push(format!("{} -> {}: {ratio:.2} of the rate", link.from, link.to));
        }
    }
    assert!(off.is_empty(), "links off their shaped rate: {off:?}");

    deployment.down().await.expect("down");
    let left = engine
        .ids_with_label(Kind::Container, &format!("{DEPLOYMENT_LABEL}={id}"))
        .await
        .expect("docker ps");
    assert!(left.is_empty(), "containers left: {left:?}");
    // The qdiscs lived on the veth pairs, which went with the containers.
    for peer in peers {
        assert!(
            !std::path::Path::new("/sys/class/net").join(&peer).exists(),
            "veth {peer} outlived down"
        );
    }
}

/// Whether this kernel has netem, tried in a scratch network namespace.
fn kernel_has_netem() -> bool {
    std::process::Command::new("unshare")
        .args([
            "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
        ])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_without_netem_fails_up_before_anything_is_made() {
    let test = "delay_without_netem_fails_up_before_anything_is_made";
    let Some(engine) = engine_or_skip(test).await else {
        return;
    };
    if !root_or_skip(test) {
        return;
    }
    if kernel_has_netem() {
        eprintln!("\n*** SKIPPING {test}: this kernel has netem ***\n");
        return;
    }
    let sandbox = Sandbox::new();
    let app = App::load(&example("dummy_app")).expect("example app loads");
    let mut delayed = node("cloud0", 200);
    delayed.delay = Some(Duration::from_millis(40));
    let nodes = vec![node("edge0", 20), delayed];
    let backend = backend_probing(&sandbox, &app, nodes, probing()).await;
    let id = backend.id().to_string();
    let err = match Deployment::up(backend, &app, &random(3)).await {
        Ok(_) => panic!("up with a delay succeeded on a kernel without netem"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("node cloud0") && err.contains("netem") && err.contains("delay"),
        "{err}"
    );
    for kind in [Kind::Container, Kind::Network, Kind::Volume] {
        let left = engine
            .ids_with_label(kind, &format!("{DEPLOYMENT_LABEL}={id}"))
            .await
            .expect("docker ls");
        assert!(left.is_empty(), "{kind:?} left: {left:?}");
    }
}
