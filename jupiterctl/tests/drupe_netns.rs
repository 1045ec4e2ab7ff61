//! DRUPE on a real emulated network: 4 nodes, each its own network namespace,
//! joined through a bridge in a hub namespace by links shaped with `tc tbf`
//! to 10, 20, 50 and 100 Mbit/s (both directions), so the directed link
//! i -> j carries min(R_i, R_j). drupe-central runs on node 0, a
//! drupe-droplet on every node; `jupiterctl profile --json` must report the
//! shaped bandwidths (within 15%, and ranked consistently), and must notice
//! a droplet that dies and comes back.
//!
//! Needs root (network namespaces); skipped with a loud message otherwise.
//! `cargo test -p jupiterctl --test drupe_netns -- --nocapture` shows the
//! table of expected vs measured bandwidths.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::netns::{Net, ProcId};

/// Shaped rate of each node's link, Mbit/s (10^6 bits).
const RATES_MBIT: [u32; 4] = [10, 20, 50, 100];
const CENTRAL_PORT: u16 = 7100;
const DROPLET_PORT: u16 = 7101;
/// Largest accepted relative error of a measured bandwidth.
const TOLERANCE: f64 = 0.15;

fn jupiterctl() -> &'static str {
    env!("CARGO_BIN_EXE_jupiterctl")
}

/// The network with drupe-central on node 0 and a droplet on every node.
struct Cluster {
    net: Net,
    droplets: Vec<ProcId>,
}

impl Cluster {
    /// `None` when network namespaces cannot be created here (skip).
    fn start(central_args: &[&str]) -> Option<Cluster> {
        let net = Net::new(&RATES_MBIT)?;
        let db = net.dir().join("central.redb");
        let mut args: Vec<String> = vec![
            "serve".into(),
            "drupe-central".into(),
            "--listen".into(),
            format!("{}:{CENTRAL_PORT}", net.ip(0)),
            "--db".into(),
            db.display().to_string(),
        ];
        args.extend(central_args.iter().map(|a| a.to_string()));
        net.spawn(0, "central", jupiterctl(), &args);
        let mut cluster = Cluster {
            net,
            droplets: Vec::new(),
        };
        for i in 0..RATES_MBIT.len() {
            let id = cluster.start_droplet(i);
            cluster.droplets.push(id);
        }
        Some(cluster)
    }

    fn central_url(&self) -> String {
        format!("http://{}:{CENTRAL_PORT}", self.net.ip(0))
    }

    fn start_droplet(&self, i: usize) -> ProcId {
        let ip = self.net.ip(i);
        self.net.spawn(
            i,
            &format!("droplet{i}"),
            jupiterctl(),
            [
                "serve".to_string(),
                "drupe-droplet".into(),
                "--listen".into(),
                format!("{ip}:{DROPLET_PORT}"),
                "--node".into(),
                format!("node{i}"),
                "--central".into(),
                self.central_url(),
                "--advertise".into(),
                format!("http://{ip}:{DROPLET_PORT}"),
                "--interval".into(),
                "1".into(),
            ],
        )
    }

    /// One `jupiterctl profile --json` from node 0: the parsed object, or why
    /// there is none yet.
    fn profile(&self) -> Result<Value, String> {
        let output = self.net.exec(
            0,
            jupiterctl(),
            ["profile", "--central", &self.central_url(), "--json"],
        );
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        if !output.status.success() {
            return Err(format!(
                "`jupiterctl profile` failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim(),
                stdout.trim()
            ));
        }
        serde_json::from_str(&stdout)
            .map_err(|e| format!("`jupiterctl profile --json` printed no JSON ({e}): {stdout}"))
    }

    /// Polls the profile until `check` accepts it; panics after `timeout`
    /// with the last reason, the last JSON seen and the processes' logs.
    fn wait_for(&self, what: &str, timeout: Duration, check: impl Fn(&Value) -> Result<(), String>) -> Value {
        let start = Instant::now();
        let mut last_json = String::from("(none)");
        loop {
            self.net.assert_running();
            let last_reason = match self.profile() {
                Ok(value) => {
                    last_json = serde_json::to_string_pretty(&value).unwrap_or_default();
                    match check(&value) {
                        Ok(()) => {
                            eprintln!("{what}: after {:.1} s", start.elapsed().as_secs_f64());
                            return value;
                        }
                        Err(reason) => reason,
                    }
                }
                Err(reason) => reason,
            };
            if start.elapsed() > timeout {
                panic!(
                    "timed out after {} s waiting for {what}: {last_reason}\nlast JSON seen:\n{last_json}\n{}",
                    timeout.as_secs(),
                    self.net.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// One link of the profile, as the test needs it.
#[derive(Debug)]
struct Link {
    from: String,
    to: String,
    reachable: bool,
    mbit: f64,
    latency_ms: f64,
    error: String,
}

fn links(profile: &Value) -> Vec<Link> {
    let Some(links) = profile["links"].as_array() else {
        return Vec::new();
    };
    links
        .iter()
        .map(|l| Link {
            from: l["from"].as_str().unwrap_or_default().to_string(),
            to: l["to"].as_str().unwrap_or_default().to_string(),
            reachable: l["reachable"].as_bool().unwrap_or(false),
            mbit: l["bandwidth_mbit_per_sec"].as_f64().unwrap_or(f64::NAN),
            latency_ms: l["latency_ms"].as_f64().unwrap_or(f64::NAN),
            error: l["error"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// `"node3"` -> 3.
fn node_index(name: &str) -> Option<usize> {
    name.strip_prefix("node")?
        .parse()
        .ok()
        .filter(|&i| i < RATES_MBIT.len())
}

fn expected_mbit(link: &Link) -> Option<u32> {
    Some(RATES_MBIT[node_index(&link.from)?].min(RATES_MBIT[node_index(&link.to)?]))
}

fn node_reachable(profile: &Value, node: &str) -> Option<bool> {
    profile["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["node"].as_str() == Some(node))
        .and_then(|n| n["reachable"].as_bool())
}

/// Complete, 12 distinct links between the 4 nodes.
fn check_complete(profile: &Value) -> Result<(), String> {
    if profile["complete"].as_bool() != Some(true) {
        return Err(format!("not complete (rounds: {})", profile["rounds"]));
    }
    let links = links(profile);
    let n = RATES_MBIT.len();
    if links.len() != n * (n - 1) {
        return Err(format!("{} links, want {}", links.len(), n * (n - 1)));
    }
    let mut seen = std::collections::BTreeSet::new();
    for link in &links {
        let (Some(from), Some(to)) = (node_index(&link.from), node_index(&link.to)) else {
            return Err(format!("link between unknown nodes {} -> {}", link.from, link.to));
        };
        if from == to || !seen.insert((from, to)) {
            return Err(format!("bad or repeated link {} -> {}", link.from, link.to));
        }
    }
    Ok(())
}

/// Complete, and every node and link reachable.
fn check_all_reachable(profile: &Value) -> Result<(), String> {
    check_complete(profile)?;
    for i in 0..RATES_MBIT.len() {
        let node = format!("node{i}");
        if node_reachable(profile, &node) != Some(true) {
            return Err(format!("{node} not reachable"));
        }
    }
    match links(profile).iter().find(|l| !l.reachable) {
        Some(l) => Err(format!("link {} -> {} not reachable ({})", l.from, l.to, l.error)),
        None => Ok(()),
    }
}

/// `node` unreachable, and every link from or to it too.
fn check_node_down(profile: &Value, node: &str) -> Result<(), String> {
    if node_reachable(profile, node) != Some(false) {
        return Err(format!("{node} is not reported unreachable"));
    }
    let links = links(profile);
    let touching: Vec<&Link> = links.iter().filter(|l| l.from == node || l.to == node).collect();
    let want = 2 * (RATES_MBIT.len() - 1);
    if touching.len() != want {
        return Err(format!("{} links from or to {node}, want {want}", touching.len()));
    }
    match touching.iter().find(|l| l.reachable) {
        Some(l) => Err(format!("link {} -> {} still reachable", l.from, l.to)),
        None => Ok(()),
    }
}

/// Expected vs measured, slowest expected first.
fn table(links: &[Link]) -> String {
    let mut rows: Vec<&Link> = links.iter().collect();
    rows.sort_by(|a, b| {
        expected_mbit(a)
            .cmp(&expected_mbit(b))
            .then(a.mbit.total_cmp(&b.mbit))
            .then(a.from.cmp(&b.from))
    });
    let mut out = format!(
        "{:<7} {:<7} {:>9} {:>9} {:>7} {:>10} {:>9}  error\n",
        "from", "to", "expected", "measured", "err %", "latency ms", "reachable"
    );
    for l in rows {
        let expected = expected_mbit(l).map_or(f64::NAN, f64::from);
        out.push_str(&format!(
            "{:<7} {:<7} {:>9.1} {:>9.2} {:>+7.1} {:>10.2} {:>9}  {}\n",
            l.from,
            l.to,
            expected,
            l.mbit,
            (l.mbit / expected - 1.0) * 100.0,
            l.latency_ms,
            l.reachable,
            l.error
        ));
    }
    out
}

/// Every link reachable, within `TOLERANCE` of min(R_from, R_to), and a
/// higher expected rate always measures higher.
fn check_bandwidths(links: &[Link]) -> Vec<String> {
    let mut problems = Vec::new();
    for l in links {
        let Some(expected) = expected_mbit(l) else {
            problems.push(format!("{} -> {}: unknown node", l.from, l.to));
            continue;
        };
        if !l.reachable {
            problems.push(format!("{} -> {}: unreachable ({})", l.from, l.to, l.error));
        }
        let expected = f64::from(expected);
        let error = (l.mbit - expected).abs() / expected;
        if error.is_nan() || error > TOLERANCE {
            problems.push(format!(
                "{} -> {}: measured {:.2} Mbit/s, expected {expected} +- {:.0}%",
                l.from,
                l.to,
                l.mbit,
                TOLERANCE * 100.0
            ));
        }
    }
    for a in links {
        for b in links {
            if let (Some(ea), Some(eb)) = (expected_mbit(a), expected_mbit(b)) {
                if ea > eb && (a.mbit.is_nan() || b.mbit.is_nan() || a.mbit <= b.mbit) {
                    problems.push(format!(
                        "ranking: {} -> {} (expected {ea}) measured {:.2} Mbit/s, not above {} -> {} \
                         (expected {eb}) at {:.2}",
                        a.from, a.to, a.mbit, b.from, b.to, b.mbit
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn profile_matches_shaped_links() {
    let Some(cluster) = Cluster::start(&[
        "--probe-interval",
        "60",
        "--probe-sizes",
        "65536,262144,1048576,2097152",
    ]) else {
        return;
    };
    let profile = cluster.wait_for(
        "a complete profile of the 12 links",
        Duration::from_secs(90),
        check_complete,
    );
    let links = links(&profile);
    let table = table(&links);
    let problems = check_bandwidths(&links);
    if !problems.is_empty() {
        panic!(
            "the profile does not match the shaped links:\n  {}\n\n{table}\nJSON:\n{}\n{}",
            problems.join("\n  "),
            serde_json::to_string_pretty(&profile).unwrap_or_default(),
            cluster.net.logs()
        );
    }
    println!("expected vs measured bandwidth (Mbit/s = 10^6 bit/s):\n{table}");
}

#[test]
fn dead_droplet_becomes_unreachable_and_comes_back() {
    let Some(mut cluster) = Cluster::start(&[
        "--probe-interval",
        "2",
        "--unreachable-after",
        "3",
        "--probe-sizes",
        "16384,65536",
    ]) else {
        return;
    };
    let timeout = Duration::from_secs(60);
    cluster.wait_for("every node and link reachable", timeout, check_all_reachable);

    // `ip netns exec` execs into the droplet: killing the child kills it;
    // `Net::kill` also checks nothing is left in node 3's namespace.
    cluster.net.kill(cluster.droplets[3]);
    cluster.wait_for("node3 and its links unreachable", timeout, |p| {
        check_complete(p)?;
        check_node_down(p, "node3")
    });

    cluster.droplets[3] = cluster.start_droplet(3);
    cluster.wait_for(
        "every node and link reachable again",
        timeout,
        check_all_reachable,
    );
}

/// Cuts (or heals) the link between nodes `a` and `b` only: each drops
/// what it would send to the other (a blackhole route), so TCP between
/// them stalls both ways while every other link, and both nodes' reports
/// to drupe-central, carry on.
fn set_cut(net: &support::netns::Net, a: usize, b: usize, cut: bool) {
    for (from, to) in [(a, b), (b, a)] {
        let target = format!("{}/32", net.ip(to));
        let verb = if cut { "add" } else { "del" };
        let output = net.exec(from, "ip", ["route", verb, "blackhole", &target]);
        assert!(
            output.status.success(),
            "ip route {verb} blackhole {target} in node {from}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Exactly the links between `a` and `b` unreachable; every node and every
/// other link reachable.
fn check_only_cut(profile: &Value, a: &str, b: &str) -> Result<(), String> {
    for i in 0..RATES_MBIT.len() {
        let node = format!("node{i}");
        if node_reachable(profile, &node) != Some(true) {
            return Err(format!("{node} is not reachable: only a link was cut"));
        }
    }
    let cut = |l: &Link| (l.from == a && l.to == b) || (l.from == b && l.to == a);
    for l in links(profile) {
        match (cut(&l), l.reachable) {
            (true, true) => return Err(format!("link {} -> {} still reachable", l.from, l.to)),
            (false, false) => {
                return Err(format!(
                    "link {} -> {} unreachable ({}), but it was not cut",
                    l.from, l.to, l.error
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

#[test]
fn a_cut_link_is_marked_unreachable_and_back() {
    let Some(cluster) = Cluster::start(&[
        "--probe-interval",
        "2",
        "--probe-timeout",
        "3",
        "--probe-sizes",
        "16384,65536",
    ]) else {
        return;
    };
    let timeout = Duration::from_secs(60);
    cluster.wait_for("every node and link reachable", timeout, check_all_reachable);

    set_cut(&cluster.net, 1, 2, true);
    let cut_at = Instant::now();
    cluster.wait_for("node1 <-> node2 unreachable, the rest reachable", timeout, |p| {
        check_only_cut(p, "node1", "node2")
    });
    println!(
        "a cut link was marked unreachable {:?} after the cut",
        cut_at.elapsed()
    );

    set_cut(&cluster.net, 1, 2, false);
    let healed_at = Instant::now();
    cluster.wait_for("every link reachable again", timeout, check_all_reachable);
    println!("and reachable again {:?} after it healed", healed_at.elapsed());
}
