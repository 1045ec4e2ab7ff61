//! Emulated links: a node's `bandwidth` and `delay` imposed on every
//! container of the node, both ways, with Linux traffic control.
//!
//! Upload is shaped on the container's `eth0`, entered from the host with
//! `nsenter -t PID -n tc ...` (so the images need neither tc nor
//! NET_ADMIN); download on the host side of the container's veth pair,
//! found by the peer index `ip link` shows for `eth0` (and checked to be a
//! veth pointing back at it). Bandwidth is a `tbf` root qdisc; delay
//! a `netem` qdisc, as tbf's child when both are set. Nothing else on the
//! host is touched, and the qdiscs live on the container's veth pair, so
//! they vanish with the containers: `down` has nothing extra to undo.
//!
//! The tc arguments are built by pure functions ([`egress_commands`]) so
//! that they can be checked without root; applying them needs root (for
//! nsenter) and a local engine (the containers' pids must be ours to see).

use super::engine::Engine;
use crate::node_list::NodeSpec;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// Bytes on the wire of a full Ethernet frame.
const FRAME: u64 = 1514;
/// The token bucket holds this long of traffic at the rate. It must be at
/// least rate/HZ (the timer tick; HZ is at most 1000, 250 on many
/// kernels) or tbf cannot keep up; and small against DRUPE's probes, which
/// would otherwise read the burst as bandwidth.
const BURST_TIME: Duration = Duration::from_millis(4);
/// The smallest bucket: a few full frames, so that the rate is reachable
/// at all at low rates.
const MIN_BURST: u64 = 8 * FRAME;
/// Queue behind the bucket: long enough that TCP keeps the link busy, short
/// enough not to add seconds of bufferbloat to every round trip.
const QUEUE_TIME: Duration = Duration::from_millis(100);
/// netem's queue when only delay is set (it holds every packet in flight).
const NETEM_UNSHAPED_LIMIT: u64 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ShapingError {
    #[error("node {node} has bandwidth/delay set: shaping its links needs root (nsenter into its containers and tc on the host); run jupiterctl as root, or drop bandwidth/delay from the node list")]
    NotRoot { node: String },
    #[error("node {node} has bandwidth/delay set, which needs the `{program}` command ({source}); install {package}")]
    Missing {
        node: String,
        program: &'static str,
        package: &'static str,
        source: std::io::Error,
    },
    #[error("node {node} has delay set, but this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM; `modprobe sch_netem` where it is a module): tc said {stderr:?}. Drop `delay:` from the node list, or run on a kernel with netem")]
    NoNetem { node: String, stderr: String },
    #[error("node {node}: this kernel refuses the shaping qdiscs (`tc {command}`: {stderr})")]
    Refused {
        node: String,
        command: String,
        stderr: String,
    },
    #[error("node {node}, container {container}: {what}")]
    Container {
        node: String,
        container: String,
        what: String,
    },
}

/// How one node's link is emulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub rate_bits_per_sec: Option<u64>,
    pub delay: Option<Duration>,
}

impl Shape {
    /// The node's shape; None when its links are left alone.
    pub fn of(node: &NodeSpec) -> Option<Self> {
        node.shaped().then_some(Self {
            rate_bits_per_sec: node.bandwidth_bits_per_sec,
            delay: node.delay,
        })
    }
}

/// Which way a shaped interface faces, for the same-node exemption:
/// what leaves a container's `eth0` goes *to* an address, what leaves its
/// host-side veth comes *from* one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Upload,
    Download,
}

/// The tc commands (arguments after `tc`) that shape what leaves `dev`.
/// `replace`, not `add`: shaping twice must not fail.
///
/// With `local` (the node's own subnet), traffic between containers of
/// the same node is left unshaped, as it would never leave a real node: an
/// `htb` root with two classes too fast to limit anything, a filter that
/// sends the node's subnet to class 1 (unshaped) and everything else to
/// class 2, which holds the tbf (and netem). HEFT counts a same-node
/// transfer as free; so does the testbed. (htb, not prio: some kernels,
/// this machine's among them, have no prio qdisc.)
pub fn egress_commands(dev: &str, shape: &Shape, local: Option<(&str, Direction)>) -> Vec<Vec<String>> {
    let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    let mut commands = Vec::new();
    let (shaped_parent, netem_under_tbf) = match local {
        Some((subnet, direction)) => {
            commands.push(words(&format!(
                "qdisc replace dev {dev} root handle 1: htb default 2"
            )));
            for class in ["1:1", "1:2"] {
                commands.push(words(&format!(
                    "class replace dev {dev} parent 1: classid {class} htb rate 100gbit quantum 60000"
                )));
            }
            let field = match direction {
                Direction::Upload => "dst",
                Direction::Download => "src",
            };
            commands.push(words(&format!(
                "filter replace dev {dev} parent 1: protocol ip prio 1 u32 match ip {field} {subnet} flowid 1:1"
            )));
            ("parent 1:2 handle 20:", "parent 20:1 handle 30:")
        }
        None => ("root handle 1:", "parent 1:1 handle 10:"),
    };
    let netem_parent = match shape.rate_bits_per_sec {
        Some(rate) => {
            let (burst, limit) = tbf_sizes(rate);
            commands.push(words(&format!(
                "qdisc replace dev {dev} {shaped_parent} tbf rate {rate}bit burst {burst} limit {limit}"
            )));
            netem_under_tbf
        }
        None => shaped_parent,
    };
    if let Some(delay) = shape.delay {
        commands.push(words(&format!(
            "qdisc replace dev {dev} {netem_parent} netem delay {}us limit {}",
            delay.as_micros(),
            netem_limit(shape.rate_bits_per_sec, delay)
        )));
    }
    commands
}

/// tbf's bucket and queue, in bytes, for `rate` bits per second.
fn tbf_sizes(rate: u64) -> (u64, u64) {
    let bytes_per_sec = rate / 8;
    let burst = (bytes_per_sec as f64 * BURST_TIME.as_secs_f64()) as u64;
    let burst = burst.max(MIN_BURST);
    let queue = (bytes_per_sec as f64 * QUEUE_TIME.as_secs_f64()) as u64;
    (burst, burst + queue.max(4 * FRAME))
}

/// netem's queue, in packets: under tbf it holds the packets in flight
/// over the delay as well as the queue tbf would have had.
fn netem_limit(rate: Option<u64>, delay: Duration) -> u64 {
    match rate {
        Some(rate) => {
            let held = (delay + QUEUE_TIME).as_secs_f64() * (rate / 8) as f64 / FRAME as f64;
            (held.ceil() as u64).max(1000)
        }
        None => NETEM_UNSHAPED_LIMIT,
    }
}

/// Checks, before anything is created, that the shaped nodes of `nodes`
/// can be shaped here: root, tc and nsenter, and a kernel that takes each
/// node's qdiscs (tried on the loopback of a scratch network namespace,
/// which vanishes with the command).
pub async fn preflight(nodes: &[NodeSpec]) -> Result<(), ShapingError> {
    let shaped: Vec<(&NodeSpec, Shape)> = nodes
        .iter()
        .filter_map(|n| Shape::of(n).map(|s| (n, s)))
        .collect();
    let Some((first, _)) = shaped.first() else {
        return Ok(());
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(ShapingError::NotRoot {
            node: first.name.clone(),
        });
    }
    for (program, version, package) in [
        ("tc", "-V", "iproute2"),
        ("nsenter", "--version", "util-linux"),
        ("unshare", "--version", "util-linux"),
    ] {
        run(program, &[version])
            .await
            .map_err(|source| ShapingError::Missing {
                node: first.name.clone(),
                program,
                package,
                source,
            })?;
    }
    for (node, shape) in shaped {
        let commands = egress_commands("lo", &shape, Some(("10.0.0.0/24", Direction::Upload)));
        let batch: String = commands.iter().map(|c| c.join(" ") + "\n").collect();
        let output = run_with_input("unshare", &["--net", "tc", "-batch", "-"], &batch)
            .await
            .map_err(|source| ShapingError::Missing {
                node: node.name.clone(),
                program: "unshare",
                package: "util-linux",
                source,
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
            if shape.delay.is_some() && stderr.contains("unknown") {
                return Err(ShapingError::NoNetem {
                    node: node.name.clone(),
                    stderr,
                });
            }
            return Err(ShapingError::Refused {
                node: node.name.clone(),
                command: batch.trim().replace('\n', "; "),
                stderr,
            });
        }
    }
    Ok(())
}

/// Shapes just-started `container` if its node, looked up in `nodes`,
/// has a shape; the home roles (no node) and unshaped nodes are left alone.
/// `local` is the node's own subnet, whose traffic stays unshaped.
pub async fn shape(
    engine: &Engine,
    container: &str,
    node: Option<&str>,
    nodes: &[NodeSpec],
    local: Option<&str>,
) -> Result<(), ShapingError> {
    apply(engine, container, node, nodes, local, egress_commands).await
}

/// Changes the rate (and delay) of `container`, shaped before by
/// [`shape`], to what its node in `nodes` now says, in place (`tc qdisc
/// replace` of the tbf and netem qdiscs only: the htb above them cannot be
/// replaced by itself, and needs not be). What an operator's `tc change`
/// does to a running node's link.
pub async fn reshape(
    engine: &Engine,
    container: &str,
    node: Option<&str>,
    nodes: &[NodeSpec],
    local: Option<&str>,
) -> Result<(), ShapingError> {
    apply(engine, container, node, nodes, local, rate_commands).await
}

/// The tc commands of one side of a container's link.
type Commands = fn(&str, &Shape, Option<(&str, Direction)>) -> Vec<Vec<String>>;

async fn apply(
    engine: &Engine,
    container: &str,
    node: Option<&str>,
    nodes: &[NodeSpec],
    local: Option<&str>,
    commands: Commands,
) -> Result<(), ShapingError> {
    let Some(node) = nodes.iter().find(|n| Some(n.name.as_str()) == node) else {
        return Ok(());
    };
    let Some(shape) = Shape::of(node) else {
        return Ok(());
    };
    shape_container(engine, container, &shape, local, commands)
        .await
        .map_err(|what| ShapingError::Container {
            node: node.name.clone(),
            container: container.to_string(),
            what,
        })
}

/// The commands of [`egress_commands`] that set the rate and the delay.
pub fn rate_commands(dev: &str, shape: &Shape, local: Option<(&str, Direction)>) -> Vec<Vec<String>> {
    egress_commands(dev, shape, local)
        .into_iter()
        .filter(|c| c.iter().any(|w| w == "tbf" || w == "netem"))
        .collect()
}

/// Shapes both directions of `container`'s eth0; the error says which
/// step failed.
async fn shape_container(
    engine: &Engine,
    container: &str,
    shape: &Shape,
    local: Option<&str>,
    commands: Commands,
) -> Result<(), String> {
    let pid = engine
        .run(&["inspect", "--format", "{{.State.Pid}}", container])
        .await
        .map_err(|e| e.to_string())?;
    let pid: u32 = match pid.parse() {
        Ok(p) if p > 0 => p,
        _ => return Err(format!("not running (its pid is {pid:?})")),
    };
    // A remote engine's (or a rootless engine's) pids are not ours to enter.
    if !std::path::Path::new(&format!("/proc/{pid}/ns/net")).exists() {
        return Err(format!(
            "its process {pid} is not visible here: shaping needs jupiterctl on the Docker host itself"
        ));
    }
    let target = pid.to_string();
    let in_container = |args: &[&str]| {
        let mut all = vec!["-t", target.as_str(), "-n"];
        all.extend_from_slice(args);
        all.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };
    // `ip`, not /sys/class/net: sysfs shows the netns that mounted it (the
    // host's), not the one nsenter entered.
    let inside = checked(
        "nsenter",
        &in_container(&["ip", "-o", "link", "show", "dev", "eth0"]),
    )
    .await?;
    let (index, peer_index) = link_indexes(&inside)
        .ok_or_else(|| format!("cannot read eth0's veth peer from `ip link`: {inside:?}"))?;
    let host = checked("ip", &["-d".into(), "-o".into(), "link".into(), "show".into()]).await?;
    let peer = veth_peer(&host, index, peer_index).ok_or_else(|| {
        format!(
            "no host veth has ifindex {peer_index} and points back at eth0 ({index}); not shaping anything"
        )
    })?;
    for command in commands("eth0", shape, local.map(|l| (l, Direction::Upload))) {
        let mut args = in_container(&["tc"]);
        args.extend(command);
        checked("nsenter", &args).await?;
    }
    for command in commands(&peer, shape, local.map(|l| (l, Direction::Download))) {
        checked("tc", &command).await?;
    }
    Ok(())
}

/// `349: eth0@if350: <...>` (one line of `ip -o link`) -> (349, 350): an
/// interface's index and its peer's.
fn link_indexes(line: &str) -> Option<(u32, u32)> {
    let (index, rest) = line.trim().split_once(": ")?;
    let (_, peer) = rest.split_once(':')?.0.split_once("@if")?;
    Some((index.parse().ok()?, peer.parse().ok()?))
}

/// The name of the host veth (in `ip -d -o link` output) whose index is
/// `peer_index` and whose own peer is `index`. Both ways, and a veth: the
/// qdiscs must land on the container's pair and on nothing else.
fn veth_peer(host_links: &str, index: u32, peer_index: u32) -> Option<String> {
    host_links.lines().find_map(|line| {
        let (own, peer) = link_indexes(line)?;
        let name = line.split_once(": ")?.1.split_once('@')?.0;
        (own == peer_index && peer == index && line.contains(" veth ")).then(|| name.to_string())
    })
}

/// Runs `program args` and returns its stdout; the error names the command
/// and carries its stderr.
async fn checked(program: &str, args: &[String]) -> Result<String, String> {
    let shown = format!("{program} {}", args.join(" "));
    let output = run(program, args).await.map_err(|e| format!("`{shown}`: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`{shown}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

async fn run<S: AsRef<std::ffi::OsStr>>(program: &str, args: &[S]) -> std::io::Result<std::process::Output> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
}

async fn run_with_input(program: &str, args: &[&str], input: &str) -> std::io::Result<std::process::Output> {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).await?;
    }
    child.wait_with_output().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(commands: Vec<Vec<String>>) -> Vec<String> {
        commands.into_iter().map(|c| c.join(" ")).collect()
    }

    #[test]
    fn bandwidth_alone_is_one_tbf() {
        let shape = Shape {
            rate_bits_per_sec: Some(20_000_000),
            delay: None,
        };
        // 2.5 MB/s: a 4 ms bucket (10000 bytes) is below the 8-frame
        // floor; 100 ms of queue is 250000 bytes.
        assert_eq!(
            joined(egress_commands("eth0", &shape, None)),
            ["qdisc replace dev eth0 root handle 1: tbf rate 20000000bit burst 12112 limit 262112"]
        );
    }

    #[test]
    fn the_nodes_own_subnet_bypasses_the_shaping() {
        let shape = Shape {
            rate_bits_per_sec: Some(20_000_000),
            delay: Some(Duration::from_millis(40)),
        };
        assert_eq!(
            joined(egress_commands("eth0", &shape, Some(("10.77.3.0/24", Direction::Upload)))),
            [
                "qdisc replace dev eth0 root handle 1: htb default 2",
                "class replace dev eth0 parent 1: classid 1:1 htb rate 100gbit quantum 60000",
                "class replace dev eth0 parent 1: classid 1:2 htb rate 100gbit quantum 60000",
                "filter replace dev eth0 parent 1: protocol ip prio 1 u32 match ip dst 10.77.3.0/24 flowid 1:1",
                "qdisc replace dev eth0 parent 1:2 handle 20: tbf rate 20000000bit burst 12112 limit 262112",
                "qdisc replace dev eth0 parent 20:1 handle 30: netem delay 40000us limit 1000",
            ]
        );
        let download = joined(egress_commands(
            "veth9",
            &shape,
            Some(("10.77.3.0/24", Direction::Download)),
        ));
        assert!(
            download[3].contains("match ip src 10.77.3.0/24 flowid 1:1"),
            "{download:?}"
        );
        // A new rate on a shaped link: only the leaves, in place.
        assert_eq!(
            joined(rate_commands(
                "eth0",
                &shape,
                Some(("10.77.3.0/24", Direction::Upload))
            )),
            [
                "qdisc replace dev eth0 parent 1:2 handle 20: tbf rate 20000000bit burst 12112 limit 262112",
                "qdisc replace dev eth0 parent 20:1 handle 30: netem delay 40000us limit 1000",
            ]
        );
    }

    #[test]
    fn bucket_and_queue_follow_the_rate() {
        // Slow: the bucket is the floor of 8 frames, the queue 100 ms.
        assert_eq!(tbf_sizes(5_000_000), (12_112, 12_112 + 62_500));
        // Fast: 4 ms of traffic, over rate/HZ even at HZ=250.
        let (burst, limit) = tbf_sizes(200_000_000);
        assert_eq!(burst, 100_000);
        assert!(burst as f64 >= 200e6 / 8.0 / 250.0);
        assert_eq!(limit, 100_000 + 2_500_000);
        // Very slow: the queue still holds a few frames.
        assert_eq!(tbf_sizes(100_000), (12_112, 12_112 + 4 * FRAME));
    }

    #[test]
    fn delay_goes_under_tbf_or_alone() {
        let both = Shape {
            rate_bits_per_sec: Some(200_000_000),
            delay: Some(Duration::from_millis(40)),
        };
        assert_eq!(
            joined(egress_commands("veth1a2b", &both, None)),
            [
                "qdisc replace dev veth1a2b root handle 1: tbf rate 200000000bit burst 100000 limit 2600000",
                // 140 ms at 25 MB/s in full frames.
                "qdisc replace dev veth1a2b parent 1:1 handle 10: netem delay 40000us limit 2312",
            ]
        );
        let delay = Shape {
            rate_bits_per_sec: None,
            delay: Some(Duration::from_micros(2500)),
        };
        assert_eq!(
            joined(egress_commands("eth0", &delay, None)),
            ["qdisc replace dev eth0 root handle 1: netem delay 2500us limit 10000"]
        );
        // A slow link's netem still queues a default's worth.
        assert_eq!(netem_limit(Some(1_000_000), Duration::from_millis(10)), 1000);
    }

    #[test]
    fn finds_the_veth_peer_and_nothing_else() {
        let inside = "349: eth0@if350: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1400 qdisc noqueue state UP\\    link/ether 02:42:ac:11:00:02";
        assert_eq!(link_indexes(inside), Some((349, 350)));
        let host = "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue\\    link/loopback 00:00:00:00:00:00\n\
                    4: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1400 qdisc pfifo_fast\\    link/ether 06:00:ac:10:00:02\n\
                    350: veth7f03f04@if349: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1400 qdisc noqueue master docker0\\    link/ether 22:d1:c7:cf:b0:0b promiscuity 1 \\    veth addrgenmode eui64\n\
                    352: veth1234567@if351: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1400 qdisc noqueue master docker0\\    link/ether 22:d1:c7:cf:b0:0c promiscuity 1 \\    veth addrgenmode eui64\n";
        assert_eq!(veth_peer(host, 349, 350).as_deref(), Some("veth7f03f04"));
        // Not a pair that points back, and never a physical interface.
        assert_eq!(veth_peer(host, 348, 350), None);
        assert_eq!(veth_peer(host, 4, 4), None);
        assert_eq!(link_indexes("4: eth0: <BROADCAST> mtu 1400"), None);
    }

    #[test]
    fn unshaped_nodes_have_no_shape() {
        let mut node = NodeSpec {
            name: "n".into(),
            cpus: 1.0,
            memory_bytes: 1 << 30,
            bandwidth_bits_per_sec: None,
            delay: None,
        };
        assert_eq!(Shape::of(&node), None);
        node.delay = Some(Duration::from_millis(5));
        assert_eq!(
            Shape::of(&node),
            Some(Shape {
                rate_bits_per_sec: None,
                delay: Some(Duration::from_millis(5))
            })
        );
    }
}
