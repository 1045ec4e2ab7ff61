//! A throwaway emulated network of real Linux network namespaces.
//!
//! `Net::new(&[10, 20, 50, 100])` builds one namespace per node plus a "hub"
//! namespace holding a bridge; node i is joined to the bridge by a veth pair
//! whose both ends are shaped with `tc tbf` to `rates_mbit[i]` Mbit/s (10^6
//! bits), so the directed link i -> j carries min(R_i, R_j). Node i has the
//! address `10.201.0.(i+1)/24` on its `eth0`. Nothing is created in (or
//! routed through) the root namespace: the veth pairs are created inside the
//! hub namespace and their node ends moved straight into the node namespaces.
//!
//! Everything is torn down on drop, also when the test panics: every spawned
//! process is killed and reaped, every namespace is deleted (which deletes
//! its veth ends and, for the hub, the bridge).
//!
//! `Net::new` returns `None` (after a loud message on stderr) only when
//! namespaces cannot be created at all (not root, no permission); any other
//! failure panics.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The `tbf` token bucket: 32 KiB is above rate/HZ even at 100 Mbit and small
/// enough that a 256 KiB transfer at 10 Mbit is not noticeably sped up by the
/// initial burst. Checked by timing TCP transfers between two shaped
/// namespaces: 10 Mbit -> 9.6-9.9 Mbit/s of goodput (1 MiB, 5 MB), 20 -> 19.3,
/// 50 -> 48.0, 100 -> 95.8-97.0 (2 MiB, 20 MB), in both directions.
pub const TBF_BURST: &str = "32kb";
/// Longest a packet may wait in the tbf queue. Kept short on purpose: a
/// probe round uses a node's link in both directions at once (at step N/2
/// the pairs i -> j and j -> i run together), and with a deep queue the ACKs
/// and HTTP/2 window updates of the incoming flow wait behind the outgoing
/// data. Two opposite TCP flows at once measured (Mbit/s, each direction):
/// 10 Mbit: 9.5/8.7 at 50ms, 9.5/9.4 at 20ms, 9.5/9.5 at 5ms; 20 Mbit:
/// 19.0/16.8 at 50ms, 18.4/17.1 at 20ms, 19.0/18.9 at 5ms; 100 Mbit:
/// 94.9/89.4 at 50ms, 95.2/93.8 at 5ms. A single flow is the same at all.
pub const TBF_LATENCY: &str = "5ms";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Identifies a process started by [`Net::spawn`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcId(usize);

struct Proc {
    label: String,
    node: usize,
    child: Child,
    /// Set once the process was killed on purpose or has been reaped.
    status: Option<ExitStatus>,
    killed: bool,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// A set of node namespaces joined by shaped links through a hub namespace.
pub struct Net {
    hub: String,
    nodes: Vec<String>,
    rates_mbit: Vec<u32>,
    /// Namespaces created so far (deleted on drop, last first).
    created: Vec<String>,
    procs: Mutex<Vec<Proc>>,
    dir: Option<tempfile::TempDir>,
    dir_path: PathBuf,
}

/// Runs a command to completion; panics (with its stderr) unless it exits 0.
fn run_checked(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program} {}`: {e}", args.join(" ")));
    if !output.status.success() {
        panic!(
            "`{program} {}` failed ({}): {}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        );
    }
    output
}

/// The last `lines` lines of a file (or a note that it cannot be read).
fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            let mut out = String::new();
            if start > 0 {
                out.push_str(&format!("    ... ({start} earlier lines)\n"));
            }
            for line in &all[start..] {
                out.push_str("    ");
                out.push_str(line);
                out.push('\n');
            }
            out
        }
        Err(e) => format!("    (cannot read {}: {e})\n", path.display()),
    }
}

impl Net {
    /// Builds the network, or returns `None` when this machine cannot create
    /// network namespaces (not root, no permission): the caller then skips.
    pub fn new(rates_mbit: &[u32]) -> Option<Net> {
        assert!(!rates_mbit.is_empty() && rates_mbit.len() < 250, "1..250 nodes");
        let prefix = format!(
            "jt{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let dir = tempfile::Builder::new()
            .prefix(&format!("{prefix}-"))
            .tempdir()
            .expect("create a temporary directory");
        let mut net = Net {
            hub: format!("{prefix}-hub"),
            nodes: (0..rates_mbit.len()).map(|i| format!("{prefix}-n{i}")).collect(),
            rates_mbit: rates_mbit.to_vec(),
            created: Vec::new(),
            procs: Mutex::new(Vec::new()),
            dir_path: dir.path().to_path_buf(),
            dir: Some(dir),
        };

        // Our pid is unique among live processes: a namespace already named
        // like ours is a leftover of a dead run that had the same pid.
        for name in std::iter::once(&net.hub).chain(&net.nodes) {
            if Path::new("/run/netns").join(name).exists() {
                let _ = Command::new("ip")
                    .args(["netns", "del", name])
                    .stdin(Stdio::null())
                    .output();
            }
        }
        // The first namespace tells whether we may create namespaces at all.
        let hub = net.hub.clone();
        if !net.add_namespace_or_skip(&hub) {
            return None;
        }
        net.ns_ip(&hub, &["link", "set", "lo", "up"]);
        net.ns_ip(&hub, &["link", "add", "br0", "type", "bridge"]);
        net.ns_ip(&hub, &["link", "set", "br0", "up"]);

        for (i, rate) in rates_mbit.iter().enumerate() {
            let ns = net.nodes[i].clone();
            net.add_namespace(&ns);
            net.ns_ip(&ns, &["link", "set", "lo", "up"]);
            // Created in the hub, node end moved straight into the node's
            // namespace: the root namespace never sees either end.
            let port = format!("n{i}");
            net.ns_ip(
                &hub,
                &[
                    "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                ],
            );
            net.ns_ip(&hub, &["link", "set", &port, "master", "br0"]);
            net.ns_ip(&hub, &["link", "set", &port, "up"]);
            let addr = format!("{}/24", net.ip(i));
            net.ns_ip(&ns, &["addr", "add", &addr, "dev", "eth0"]);
            net.ns_ip(&ns, &["link", "set", "eth0", "up"]);
            // Both directions: what node i sends (its eth0's egress) and what
            // node i receives (the hub port's egress towards it).
            let rate = format!("{rate}mbit");
            for (namespace, dev) in [(ns.as_str(), "eth0"), (hub.as_str(), port.as_str())] {
                run_checked(
                    "ip",
                    &[
                        "netns",
                        "exec",
                        namespace,
                        "tc",
                        "qdisc",
                        "replace",
                        "dev",
                        dev,
                        "root",
                        "tbf",
                        "rate",
                        &rate,
                        "burst",
                        TBF_BURST,
                        "latency",
                        TBF_LATENCY,
                    ],
                );
            }
        }
        Some(net)
    }

    /// `ip netns add`, returning false (after explaining loudly why the test
    /// is skipped) when namespaces cannot be created here.
    fn add_namespace_or_skip(&mut self, name: &str) -> bool {
        let output = match Command::new("ip")
            .args(["netns", "add", name])
            .stdin(Stdio::null())
            .output()
        {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                skip_message(&format!("the `ip` command (iproute2) is not installed: {e}"));
                return false;
            }
            Err(e) => panic!("cannot run `ip netns add {name}`: {e}"),
        };
        if output.status.success() {
            self.created.push(name.to_string());
            return true;
        }
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let denied = ["Permission denied", "Operation not permitted", "EPERM", "EACCES"]
            .iter()
            .any(|needle| stderr.contains(needle));
        if !root || denied {
            skip_message(&format!(
                "`ip netns add {name}` failed ({}; running as {}): {stderr}",
                output.status,
                if root { "root" } else { "non-root" }
            ));
            return false;
        }
        panic!("`ip netns add {name}` failed ({}): {stderr}", output.status);
    }

    fn add_namespace(&mut self, name: &str) {
        run_checked("ip", &["netns", "add", name]);
        self.created.push(name.to_string());
    }

    /// `ip -n NS args...`, checked.
    fn ns_ip(&self, ns: &str, args: &[&str]) -> Output {
        let mut all = vec!["-n", ns];
        all.extend_from_slice(args);
        run_checked("ip", &all)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Node i's address (no prefix length), e.g. `10.201.0.1` for node 0.
    pub fn ip(&self, i: usize) -> String {
        format!("10.201.0.{}", i + 1)
    }

    /// Node i's namespace name.
    pub fn ns(&self, i: usize) -> &str {
        &self.nodes[i]
    }

    /// The hub namespace name (holds the bridge `br0`).
    pub fn hub(&self) -> &str {
        &self.hub
    }

    /// Node i's shaped rate in Mbit/s.
    pub fn rate_mbit(&self, i: usize) -> u32 {
        self.rates_mbit[i]
    }

    /// The temporary directory of this network (logs; a place for data).
    /// Kept, not deleted, when the test panics.
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }

    /// Starts `program args...` in node `node`'s namespace (through `ip netns
    /// exec`, which execs into the program: the child's pid is the
    /// program's). stdout and stderr go to `<dir>/<label>.<id>.{out,err}`.
    pub fn spawn<I, S>(&self, node: usize, label: &str, program: impl AsRef<OsStr>, args: I) -> ProcId
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
        let id = procs.len();
        let stdout = self.dir_path.join(format!("{label}.{id}.out"));
        let stderr = self.dir_path.join(format!("{label}.{id}.err"));
        let child = Command::new("ip")
            .args(["netns", "exec", &self.nodes[node]])
            .arg(program.as_ref())
            .args(args)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("create stdout log"))
            .stderr(File::create(&stderr).expect("create stderr log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {label} in {}: {e}", self.nodes[node]));
        procs.push(Proc {
            label: label.to_string(),
            node,
            child,
            status: None,
            killed: false,
            stdout,
            stderr,
        });
        ProcId(id)
    }

    /// Runs `program args...` to completion in node `node`'s namespace.
    pub fn exec<I, S>(&self, node: usize, program: impl AsRef<OsStr>, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Command::new("ip")
            .args(["netns", "exec", &self.nodes[node]])
            .arg(program.as_ref())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run a command in {}: {e}", self.nodes[node]))
    }

    /// The pid of a spawned process (the program itself, see [`Net::spawn`]).
    pub fn pid(&self, id: ProcId) -> u32 {
        self.procs.lock().unwrap_or_else(|e| e.into_inner())[id.0]
            .child
            .id()
    }

    /// SIGKILLs a spawned process and reaps it. Then checks that no process
    /// at all is left in its node's namespace, so that a program that forked
    /// cannot survive: panics if one is still there after 5 s. (Only use this
    /// when the process is the only one living in that namespace.)
    pub fn kill(&self, id: ProcId) {
        let node = {
            let mut procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
            let proc = &mut procs[id.0];
            proc.killed = true;
            if proc.status.is_none() {
                let _ = proc.child.kill();
                proc.status = Some(proc.child.wait().expect("wait for the killed process"));
            }
            proc.node
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let pids = self.ns_pids(&self.nodes[node]);
            if pids.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "processes {pids:?} still live in namespace {} after killing {:?}\n{}",
                    self.nodes[node],
                    id,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Panics (with every log's tail) if a spawned process that was not
    /// killed on purpose has exited.
    pub fn assert_running(&self) {
        let mut dead = Vec::new();
        {
            let mut procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
            for proc in procs.iter_mut().filter(|p| !p.killed) {
                if proc.status.is_none() {
                    if let Ok(Some(status)) = proc.child.try_wait() {
                        proc.status = Some(status);
                    }
                }
                if let Some(status) = proc.status {
                    dead.push(format!("{} (node {}) exited: {status}", proc.label, proc.node));
                }
            }
        }
        if !dead.is_empty() {
            panic!("{}\n{}", dead.join("\n"), self.logs());
        }
    }

    /// The tails of every spawned process's stdout and stderr.
    pub fn logs(&self) -> String {
        let procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for proc in procs.iter() {
            let state = match (proc.killed, proc.status) {
                (true, _) => "killed".to_string(),
                (false, Some(status)) => format!("exited: {status}"),
                (false, None) => "running".to_string(),
            };
            out.push_str(&format!(
                "--- {} (node {}, pid {}, {state}) stdout:\n{}",
                proc.label,
                proc.node,
                proc.child.id(),
                tail(&proc.stdout, 20)
            ));
            out.push_str(&format!("--- {} stderr:\n{}", proc.label, tail(&proc.stderr, 40)));
        }
        out
    }

    /// Pids of every process living in a namespace (ours: the namespaces are
    /// uniquely named per test run).
    fn ns_pids(&self, ns: &str) -> Vec<i32> {
        match Command::new("ip")
            .args(["netns", "pids", ns])
            .stdin(Stdio::null())
            .output()
        {
            Ok(output) => String::from_utf8_lossy(&output.stdout)
                .split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn skip_message(reason: &str) {
    eprintln!(
        "\n========================================================================\n\
         SKIPPED: this test needs to create Linux network namespaces (root, \
         iproute2) and cannot here:\n  {reason}\n\
         ========================================================================\n"
    );
}

impl Drop for Net {
    fn drop(&mut self) {
        // Never panic here: this may run while the test is unwinding.
        let procs = self.procs.get_mut().unwrap_or_else(|e| e.into_inner());
        for proc in procs.iter_mut() {
            if proc.status.is_none() {
                let _ = proc.child.kill();
            }
        }
        for proc in procs.iter_mut() {
            if proc.status.is_none() {
                proc.status = proc.child.wait().ok();
            }
        }
        // Anything else still living in our namespaces (children of the
        // programs) would keep the namespace, and its veth, alive.
        for ns in self.created.clone() {
            for pid in self.ns_pids(&ns) {
                // SAFETY: plain syscall; the pid lives in a namespace this
                // test created.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
        for ns in self.created.iter().rev() {
            match Command::new("ip")
                .args(["netns", "del", ns])
                .stdin(Stdio::null())
                .output()
            {
                Ok(output) if output.status.success() => {}
                Ok(output) => eprintln!(
                    "warning: `ip netns del {ns}` failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
                Err(e) => eprintln!("warning: cannot run `ip netns del {ns}`: {e}"),
            }
        }
        if let Some(dir) = self.dir.take() {
            if std::thread::panicking() {
                eprintln!("logs kept in {}", dir.keep().display());
            }
        }
    }
}
