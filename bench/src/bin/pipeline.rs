//! Pipeline benchmark: inputs per second through a 7-task app shaped like
//! `examples/dummy_app`, with trivial tasks, and the per-hop overhead.
//!
//! Two passes over one app, each on a fresh local deployment (3 emulated
//! nodes, real gRPC servers on loopback, queues in a temp dir with fsyncs):
//!
//! * throughput: all `--inputs` submitted at once (`jupiterctl::run::run`);
//!   hop figures here include waiting for a busy task slot;
//! * unloaded: `--sequential` inputs, one at a time (next submitted after the
//!   previous result), so the hop figures are pure overhead.
//!
//! hop = latest parent output written -> this task's process started.

use anyhow::{bail, Context, Result};
use clap::Parser;
use jupiter_bench::{machine, median, percentile, write_script};
use jupiter_common::app::App;
use jupiter_common::proto::circe::home::v1::InputResult;
use jupiterctl::deployment::{Backend, Deployment, PlacementRequest, Scheduler};
use jupiterctl::local::{Local, LocalConfig};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Inputs/s and per-hop overhead through a 7-task DAG of trivial tasks")]
struct Args {
    /// Inputs streamed in the throughput pass.
    #[arg(long, default_value_t = 200)]
    inputs: usize,
    /// Inputs sent one at a time in the unloaded pass (0 skips it).
    #[arg(long, default_value_t = 30)]
    sequential: usize,
    /// Emulated nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Parallelism of every task.
    #[arg(long, default_value_t = 2)]
    parallelism: usize,
    /// Bytes per input file.
    #[arg(long, default_value_t = 1024)]
    input_size: usize,
    /// Seed of the random scheduler.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    json: bool,
    /// Run each role as its own supervised process (`jupiterctl run
    /// --processes`), served by this `jupiterctl` binary (default: the one
    /// beside this benchmark, `target/release/jupiterctl`).
    #[arg(long)]
    processes: bool,
    #[arg(long, value_name = "PATH")]
    jupiterctl: Option<PathBuf>,
    /// Measure what tracing costs instead: ROUNDS rounds of the throughput
    /// pass without spans, with every role exporting to a real OTLP
    /// receiver in this process, and exporting to an endpoint that never
    /// answers, interleaved; prints each one's inputs/s and the ratios.
    #[arg(long, value_name = "ROUNDS", default_value_t = 0)]
    tracing_overhead: usize,
    /// Every role of the throughput pass sends its spans to this OTLP
    /// endpoint.
    #[arg(long, value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// (internal) Serve an OTLP receiver: print its URL, then the number of
    /// spans it got once stdin closes. `--tracing-overhead` runs it as its
    /// own process, so that its work is not counted as the roles'.
    #[arg(long, hide = true)]
    otlp_receiver: bool,
    /// Mutual TLS between every role and from this process (`run --tls`).
    #[arg(long)]
    tls: bool,
    /// Measure what mutual TLS costs instead: ROUNDS rounds of the
    /// throughput pass in plaintext and with --tls, interleaved; prints
    /// each one's inputs/s and the ratio.
    #[arg(long, value_name = "ROUNDS", default_value_t = 0)]
    tls_overhead: usize,
    /// Measure how task processes are best started instead: ROUNDS rounds
    /// of the throughput pass with tasks started by fork + exec
    /// (JUPITER_CHILD_SPAWN=fork), by posix_spawn through setpriv
    /// (=setpriv) and by clone (the default), interleaved.
    #[arg(long, value_name = "ROUNDS", default_value_t = 0)]
    spawn_overhead: usize,
    /// (internal) `fork` or `setpriv`: how this pass's workers start tasks.
    #[arg(long, hide = true, value_name = "HOW")]
    child_spawn: Option<String>,
}

/// The `jupiterctl` that serves the roles with `--processes`.
fn jupiterctl(args: &Args) -> Result<Option<PathBuf>> {
    if !args.processes {
        return Ok(None);
    }
    let path = match &args.jupiterctl {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the benchmark's folder")?
            .join("jupiterctl"),
    };
    if !path.is_file() {
        bail!(
            "--processes: no jupiterctl at {} (build it: cargo build --release -p jupiterctl, or give --jupiterctl PATH)",
            path.display()
        );
    }
    Ok(Some(path))
}

/// task -> children, as in examples/dummy_app.
const DAG: &[(&str, &[&str])] = &[
    ("task0", &["task1", "task2", "task3", "task4"]),
    ("task1", &["task4"]),
    ("task2", &["task4", "task5", "task6"]),
    ("task3", &["task4", "task5", "task6"]),
    ("task4", &["task6"]),
    ("task5", &["task6"]),
    ("task6", &[]),
];

fn write_app(dir: &Path, parallelism: usize) -> Result<()> {
    write_script(
        &dir.join("t.sh"),
        r#"exec cat "$@" > "$JUPITER_OUTPUT_DIR/${JUPITER_INPUT_ID}.$JUPITER_TASK""#,
    )?;
    let mut yaml = String::from("name: bench7\ntasks:\n");
    for (task, children) in DAG {
        yaml.push_str(&format!(
            "  - name: {task}\n    command: ./t.sh\n    children: [{}]\n    parallelism: {parallelism}\n",
            children.join(", ")
        ));
    }
    std::fs::write(dir.join("app.yaml"), yaml)?;
    Ok(())
}

fn write_inputs(dir: &Path, prefix: &str, n: usize, size: usize) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopq\n";
    let body: Vec<u8> = line.iter().cycle().take(size).copied().collect();
    (0..n)
        .map(|i| {
            let path = dir.join(format!("{prefix}{i:05}.txt"));
            std::fs::write(&path, &body)?;
            Ok(path)
        })
        .collect()
}

/// The local backend of pass `name`, in its own folders.
fn backend(app: &App, root: &Path, name: &str, args: &Args) -> Result<Box<dyn Backend>> {
    traced_backend(app, root, name, args, None)
}

/// [`backend`], its roles exporting spans to `endpoint`.
fn traced_backend(
    app: &App,
    root: &Path,
    name: &str,
    args: &Args,
    endpoint: Option<String>,
) -> Result<Box<dyn Backend>> {
    Ok(Box::new(Local::new(
        &app.name,
        LocalConfig {
            otlp_endpoint: endpoint,
            nodes: args.nodes,
            workdir: root.join(name).join("work"),
            output: root.join(name).join("out"),
            python: "python3".into(),
            runner: Default::default(),
            probe: Default::default(),
            processes: jupiterctl(args)?,
            tls: args.tls,
        },
    )))
}

/// A random mapping seeded by `--seed`.
fn random(args: &Args) -> PlacementRequest {
    PlacementRequest {
        scheduler: Scheduler::Random,
        static_mapping: Default::default(),
        seed: args.seed,
        python: "python3".into(),
        profile: Default::default(),
        replan: Default::default(),
    }
}

/// Timings of one pass.
#[derive(Debug, Default)]
struct Pass {
    inputs: usize,
    ok: usize,
    wall_s: f64,
    makespan_ms: Vec<f64>,
    /// Non-ingress tasks only.
    hop_ms: Vec<f64>,
    /// Non-ingress tasks only: hop minus the wait for a free slot.
    hop_no_wait_ms: Vec<f64>,
    run_ms: Vec<f64>,
    transfer_ms: Vec<f64>,
    /// CPU time of this process (every role, not the tasks' processes) per
    /// input, over the whole pass (up and down included).
    cpu_ms_per_input: f64,
}

impl Pass {
    fn from_results(results: &[InputResult], wall: Duration) -> Self {
        let mut pass = Pass {
            inputs: results.len(),
            ok: results.iter().filter(|r| r.ok).count(),
            wall_s: wall.as_secs_f64(),
            ..Default::default()
        };
        for r in results.iter().filter(|r| r.ok) {
            pass.makespan_ms.push(r.makespan_ms);
            for t in r.tasks.iter().filter(|t| t.error.is_empty()) {
                pass.run_ms.push(t.run_ms);
                pass.transfer_ms.push(t.transfer_ms);
                if t.task != "task0" {
                    pass.hop_ms.push(t.hop_ms);
                    pass.hop_no_wait_ms.push((t.hop_ms - t.queue_wait_ms).max(0.0));
                }
            }
        }
        pass
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "inputs": self.inputs,
            "ok": self.ok,
            "wall_s": self.wall_s,
            "inputs_per_s": self.inputs as f64 / self.wall_s.max(1e-9),
            "roles_cpu_ms_per_input": self.cpu_ms_per_input,
            "makespan_ms": { "median": median(&self.makespan_ms), "p95": percentile(&self.makespan_ms, 0.95) },
            "hop_ms": { "median": median(&self.hop_ms), "p95": percentile(&self.hop_ms, 0.95), "samples": self.hop_ms.len() },
            "hop_minus_slot_wait_ms": { "median": median(&self.hop_no_wait_ms), "p95": percentile(&self.hop_no_wait_ms, 0.95) },
            "task_run_ms": { "median": median(&self.run_ms), "p95": percentile(&self.run_ms, 0.95) },
            "transfer_ms": { "median": median(&self.transfer_ms), "p95": percentile(&self.transfer_ms, 0.95) },
        })
    }

    fn print(&self, title: &str) {
        println!("{title}");
        println!(
            "  {}/{} inputs ok in {:.2} s  ->  {:.1} inputs/s",
            self.ok,
            self.inputs,
            self.wall_s,
            self.inputs as f64 / self.wall_s.max(1e-9)
        );
        println!(
            "  makespan           median {:8.2} ms   p95 {:8.2} ms",
            median(&self.makespan_ms),
            percentile(&self.makespan_ms, 0.95)
        );
        println!(
            "  hop (non-ingress)  median {:8.2} ms   p95 {:8.2} ms   ({} hops)",
            median(&self.hop_ms),
            percentile(&self.hop_ms, 0.95),
            self.hop_ms.len()
        );
        println!(
            "  hop - slot wait    median {:8.2} ms   p95 {:8.2} ms",
            median(&self.hop_no_wait_ms),
            percentile(&self.hop_no_wait_ms, 0.95)
        );
        println!(
            "  task run (spawn)   median {:8.2} ms   p95 {:8.2} ms",
            median(&self.run_ms),
            percentile(&self.run_ms, 0.95)
        );
        println!(
            "  transfer (outputs) median {:8.2} ms   p95 {:8.2} ms",
            median(&self.transfer_ms),
            percentile(&self.transfer_ms, 0.95)
        );
    }
}

async fn throughput_pass(app: App, root: &Path, args: &Args) -> Result<Pass> {
    traced_pass(app, root, "throughput", args, args.otlp_endpoint.clone()).await
}

async fn traced_pass(
    app: App,
    root: &Path,
    name: &str,
    args: &Args,
    endpoint: Option<String>,
) -> Result<Pass> {
    let inputs = root.join(name).join("inputs");
    write_inputs(&inputs, "in", args.inputs, args.input_size)?;
    let cpu = cpu_seconds();
    let outcome = jupiterctl::run::run(
        traced_backend(&app, root, name, args, endpoint)?,
        &app,
        &random(args),
        &[inputs],
        jupiterctl::session::Pace::AllAtOnce,
        Duration::from_secs(600),
        false,
    )
    .await
    .context("throughput pass")?;
    let mut pass = Pass::from_results(&outcome.results, outcome.wall);
    pass.cpu_ms_per_input = (cpu_seconds() - cpu) * 1000.0 / pass.inputs.max(1) as f64;
    Ok(pass)
}

async fn sequential_pass(app: App, root: &Path, args: &Args) -> Result<Pass> {
    let files = write_inputs(&root.join("seq-inputs"), "seq", args.sequential, args.input_size)?;
    let deployment = Deployment::up(backend(&app, root, "sequential", args)?, &app, &random(args))
        .await
        .context("deploying")?;
    let result = async {
        let client = jupiterctl::session::client(&deployment.summary.endpoints().circe_home).await?;
        let mut results = Vec::new();
        let started = Instant::now();
        for file in &files {
            let watch = jupiterctl::session::watch(&client).await?;
            let ids = jupiterctl::session::submit_all(&client, std::slice::from_ref(file)).await?;
            results.extend(
                jupiterctl::session::collect(
                    watch,
                    &ids,
                    Duration::from_secs(60),
                    false,
                    std::future::pending(),
                )
                .await?,
            );
        }
        anyhow::Ok(Pass::from_results(&results, started.elapsed()))
    }
    .await;
    deployment.down().await.context("taking the deployment down")?;
    result.context("sequential pass")
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.otlp_receiver {
        return serve_receiver().await;
    }
    if args.tracing_overhead > 0 {
        return tracing_overhead(&args).await;
    }
    if let Some(how) = &args.child_spawn {
        // Before any task starts: the way is read once, at the first.
        std::env::set_var(jupiter_common::env::CHILD_SPAWN, how);
    }
    if args.spawn_overhead > 0 {
        let way = |how: &str| vec!["--child-spawn".to_string(), how.to_string()];
        let kinds = [
            ("fork", way("fork")),
            ("setpriv", way("setpriv")),
            ("default", Vec::new()),
        ];
        let tie = format!("{:?}", jupiter_common::child::tie());
        let extra = serde_json::json!({ "default_tie": tie });
        return compare(&args, "spawn", &kinds, args.spawn_overhead, extra).await;
    }
    if args.tls_overhead > 0 {
        let kinds = [("plaintext", Vec::new()), ("tls", vec!["--tls".to_string()])];
        return compare(&args, "tls", &kinds, args.tls_overhead, serde_json::json!({})).await;
    }
    let root = tempfile::Builder::new()
        .prefix("jupiter-bench-pipeline")
        .tempdir()?;
    let app_dir = root.path().join("app");
    std::fs::create_dir_all(&app_dir)?;
    write_app(&app_dir, args.parallelism)?;
    let app = App::load(&app_dir).context("loading the generated app")?;

    let sequential = if args.sequential > 0 {
        Some(sequential_pass(app.clone(), root.path(), &args).await?)
    } else {
        None
    };
    let throughput = throughput_pass(app, root.path(), &args).await?;

    if throughput.ok != throughput.inputs {
        eprintln!(
            "warning: {} of {} inputs failed",
            throughput.inputs - throughput.ok,
            throughput.inputs
        );
    }
    let target_ms = 5.0;
    let unloaded_hop = sequential.as_ref().map(|p| median(&p.hop_ms));
    if args.json {
        let out = serde_json::json!({
            "benchmark": "pipeline",
            "machine": machine(),
            "app": "7 tasks shaped like examples/dummy_app, trivial sh tasks",
            "nodes": args.nodes,
            "parallelism": args.parallelism,
            "input_size": args.input_size,
            "roles": if args.processes { "processes" } else { "in-process" },
            "throughput": throughput.json(),
            "unloaded": sequential.as_ref().map(Pass::json),
            "hop_target_ms": target_ms,
            "hop_target_met_unloaded": unloaded_hop.map(|h| h < target_ms),
            "hop_target_met_loaded": median(&throughput.hop_ms) < target_ms,
        });
        println!("{}", serde_json::to_string(&out)?);
    } else {
        let m = machine();
        println!(
            "pipeline: 7-task dummy_app-shaped DAG, trivial tasks, {} nodes, parallelism {}, {} B inputs, roles {} ({} cores, {} GiB)",
            args.nodes,
            args.parallelism,
            args.input_size,
            if args.processes { "each its own process" } else { "in one process" },
            m["cores"],
            m["mem_gib"]
        );
        if let Some(p) = &sequential {
            p.print(&format!("unloaded pass ({} inputs, one at a time):", p.inputs));
        }
        throughput.print(&format!(
            "throughput pass ({} inputs submitted at once):",
            throughput.inputs
        ));
        match unloaded_hop {
            Some(h) => println!(
                "per-hop overhead target < {target_ms} ms: unloaded median {h:.2} ms -> {}",
                if h < target_ms { "MET" } else { "NOT MET" }
            ),
            None => println!("per-hop overhead target < {target_ms} ms: (unloaded pass skipped)"),
        }
    }
    if throughput.ok == 0 {
        bail!("no input succeeded");
    }
    Ok(())
}

/// `--otlp-receiver`: a real OTLP receiver until stdin closes.
async fn serve_receiver() -> Result<()> {
    use tokio::io::AsyncReadExt;
    let receiver = jupiter_tests::otlp::Receiver::start().await;
    println!("{}", receiver.url);
    let mut rest = Vec::new();
    tokio::io::stdin().read_to_end(&mut rest).await?;
    println!("{}", receiver.spans().len());
    Ok(())
}

/// CPU time (user + system) this process has used: the roles' work, as
/// they all run in it (the tasks' own processes are not counted).
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// `--tracing-overhead`: the throughput pass without spans, exporting to a
/// real receiver (a process of its own), and exporting to an endpoint that
/// never answers; each round runs the three in a rotated order so that a
/// drifting machine (the disk's fsyncs) hits all three alike. Throughput is
/// noisy here; the roles' CPU time per input is the steadier figure.
async fn tracing_overhead(args: &Args) -> Result<()> {
    use tokio::io::AsyncBufReadExt;
    let mut receiver = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--otlp-receiver")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the OTLP receiver")?;
    let mut lines = tokio::io::BufReader::new(receiver.stdout.take().context("receiver's stdout")?).lines();
    let url = lines.next_line().await?.context("the receiver's URL")?;
    let hole = jupiter_tests::otlp::BlackHole::start().await;
    let kinds = [
        ("off", Vec::new()),
        ("receiver", vec!["--otlp-endpoint".to_string(), url]),
        (
            "unreachable",
            vec!["--otlp-endpoint".to_string(), hole.url.clone()],
        ),
    ];
    let (rates, cpu_ms) = interleaved(args, &kinds, args.tracing_overhead).await?;
    drop(receiver.stdin.take());
    let spans = lines.next_line().await?.unwrap_or_default();
    let _ = receiver.wait().await;
    let summary = Comparison {
        what: "tracing",
        kinds: &kinds,
        rates: &rates,
        cpu_ms: &cpu_ms,
    };
    summary.print(
        args,
        args.tracing_overhead,
        serde_json::json!({ "spans_received": spans }),
    )?;
    if !args.json {
        println!("  the receiver got {spans} spans");
    }
    Ok(())
}

/// `rounds` rounds of the throughput pass in each of `kinds` (a name and
/// the flags that make it), each round in a rotated order so that a
/// drifting machine (the disk's fsyncs) hits all alike, each pass in a
/// fresh process: one that ran passes before forks its tasks more slowly
/// (its memory has grown), which would be charged to whichever came later.
/// Per kind: the inputs/s and the roles' CPU ms per input of every round.
async fn interleaved(
    args: &Args,
    kinds: &[(&str, Vec<String>)],
    rounds: usize,
) -> Result<(Vec<Vec<f64>>, Vec<Vec<f64>>)> {
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    let mut cpu_ms: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    for round in 0..rounds {
        for k in 0..kinds.len() {
            let i = (k + round) % kinds.len();
            let (kind, flags) = &kinds[i];
            let mut pass = tokio::process::Command::new(std::env::current_exe()?);
            pass.args(["--json", "--sequential", "0"])
                .args(["--inputs", &args.inputs.to_string()])
                .args(["--nodes", &args.nodes.to_string()])
                .args(["--parallelism", &args.parallelism.to_string()])
                .args(["--input-size", &args.input_size.to_string()])
                .args(["--seed", &args.seed.to_string()])
                .args(flags);
            if args.processes {
                pass.arg("--processes");
                if let Some(path) = &args.jupiterctl {
                    pass.arg("--jupiterctl").arg(path);
                }
            }
            let out = pass.output().await.context("running a pass")?;
            if !out.status.success() {
                bail!(
                    "{kind}: the pass failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).context("the pass's JSON")?;
            let throughput = &json["throughput"];
            if throughput["ok"] != throughput["inputs"] {
                bail!("{kind}: not every input succeeded: {throughput}");
            }
            let rate = throughput["inputs_per_s"].as_f64().unwrap_or(0.0);
            let per_input = throughput["roles_cpu_ms_per_input"].as_f64().unwrap_or(0.0);
            eprintln!(
                "round {}: {kind}: {rate:.1} inputs/s, roles' CPU {per_input:.2} ms per input",
                round + 1
            );
            rates[i].push(rate);
            cpu_ms[i].push(per_input);
        }
    }
    Ok((rates, cpu_ms))
}

/// [`interleaved`] rounds of `kinds`, printed as a [`Comparison`].
async fn compare(
    args: &Args,
    what: &'static str,
    kinds: &[(&str, Vec<String>)],
    rounds: usize,
    extra: serde_json::Value,
) -> Result<()> {
    let (rates, cpu_ms) = interleaved(args, kinds, rounds).await?;
    let summary = Comparison {
        what,
        kinds,
        rates: &rates,
        cpu_ms: &cpu_ms,
    };
    summary.print(args, rounds, extra)
}

/// The figures of [`interleaved`], each kind against the first.
struct Comparison<'a> {
    /// What is compared (`tracing`, `tls`, `spawn`).
    what: &'static str,
    kinds: &'a [(&'a str, Vec<String>)],
    rates: &'a [Vec<f64>],
    cpu_ms: &'a [Vec<f64>],
}

impl Comparison<'_> {
    /// The median over rounds of kind `i`'s inputs/s over the first
    /// kind's in the same round: a round's passes ran back to back, so
    /// this ratio is spared the machine's slower drifts that the ratio of
    /// the two medians is not.
    fn paired(&self, i: usize) -> f64 {
        let ratios: Vec<f64> = self.rates[i]
            .iter()
            .zip(&self.rates[0])
            .map(|(rate, base)| rate / base)
            .collect();
        median(&ratios)
    }

    fn print(&self, args: &Args, rounds: usize, extra: serde_json::Value) -> Result<()> {
        let (base_rate, base_cpu) = (median(&self.rates[0]), median(&self.cpu_ms[0]));
        let base = self.kinds[0].0;
        let passes: Vec<serde_json::Value> = self
            .kinds
            .iter()
            .enumerate()
            .map(|(i, (kind, _))| {
                serde_json::json!({
                    self.what: kind,
                    "inputs_per_s": { "median": median(&self.rates[i]), "all": self.rates[i] },
                    "cpu_ms_per_input": { "median": median(&self.cpu_ms[i]), "all": self.cpu_ms[i] },
                    format!("throughput_vs_{base}"): median(&self.rates[i]) / base_rate,
                    format!("cpu_vs_{base}"): median(&self.cpu_ms[i]) / base_cpu,
                    format!("paired_throughput_vs_{base}"): self.paired(i),
                })
            })
            .collect();
        if args.json {
            let mut out = serde_json::json!({
                "benchmark": format!("pipeline {} overhead", self.what),
                "machine": machine(),
                "inputs": args.inputs,
                "rounds": rounds,
                "passes": passes,
            });
            if let (Some(out), Some(extra)) = (out.as_object_mut(), extra.as_object()) {
                out.extend(extra.clone());
            }
            println!("{}", serde_json::to_string(&out)?);
            return Ok(());
        }
        println!(
            "{} overhead: {} inputs at once through the 7-task DAG, {rounds} rounds (medians)",
            self.what, args.inputs
        );
        for (i, (kind, _)) in self.kinds.iter().enumerate() {
            let rate = format!(
                "  {kind:<12} {:7.1} inputs/s ({:+5.1}% vs {base}; round by round {:+5.1}%)",
                median(&self.rates[i]),
                (median(&self.rates[i]) / base_rate - 1.0) * 100.0,
                (self.paired(i) - 1.0) * 100.0
            );
            // With --processes the roles' CPU is in their own processes.
            match args.processes {
                true => println!("{rate}"),
                false => println!(
                    "{rate}   roles' CPU {:6.2} ms per input ({:+5.1}% vs {base})",
                    median(&self.cpu_ms[i]),
                    (median(&self.cpu_ms[i]) / base_cpu - 1.0) * 100.0
                ),
            }
        }
        Ok(())
    }
}
