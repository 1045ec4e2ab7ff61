//! Peer benchmark: Jupiter against Dask distributed, the same tasks on the
//! same inputs in one run, for two apps of the same shape (`--only` picks one):
//!
//! **python**: an original-format Python app.
//! The app (written at run time): `source -> left, right -> join -> sink`,
//! each task a few SHA-256 rounds over its input. Jupiter runs it on 3
//! local nodes with warm interpreters (the default) and with
//! `--fresh-interpreter` (one interpreter per input, as before); Dask runs
//! it on a `LocalCluster` of 3 single-threaded worker processes, each having
//! imported the scripts once (`bench/peers/dask_app.py`). Per side: inputs/s
//! with every input submitted at once, and the median makespan (client
//! side) of inputs sent one at a time; Jupiter's deployment gets one
//! warm-up input before the clock starts, as Dask's workers do. Also a
//! one-task no-op app: Jupiter's time per call of a Python task, warm and
//! fresh.
//!
//! **shell**: `bench/peers/shell_app`, an app.yaml app of the same shape
//! whose tasks are `/bin/sh` scripts (tr, sort, uniq, paste, wc, cksum).
//! Jupiter runs it on 3 local nodes; Dask runs the same scripts with
//! `subprocess.run` under the same task contract on a `LocalCluster` of 3
//! single-threaded worker processes (`bench/peers/dask_shell.py`). Both are
//! warmed with one input through the DAG before the clock starts, and run
//! the timed inputs on that same deployment / cluster. Per side: inputs/s
//! with every input submitted at once, and the median makespan (client
//! side: submitted to result seen) of inputs sent one at a time, against
//! issue 11's goals: ≥ 1.5× Dask's throughput, ≤ 0.5× its makespan. The
//! egress outputs of every timed input must be byte-identical on both
//! sides, or the run fails.

use anyhow::{bail, Context, Result};
use clap::Parser;
use jupiter_bench::{machine, median};
use jupiter_common::app::App;
use jupiterctl::deployment::{Deployment, PlacementRequest, Scheduler};
use jupiterctl::local::{Local, LocalConfig};
use jupiterctl::run::RunOutcome;
use jupiterctl::session::Pace;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Which comparison runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Only {
    /// The original-format Python app (and the no-op per-call figure).
    Python,
    /// The app.yaml app of /bin/sh tasks (bench/peers/shell_app).
    Shell,
}

#[derive(Parser, Debug)]
#[command(
    about = "Jupiter against Dask: an original-format Python app (warm and fresh interpreters) and an app of /bin/sh tasks"
)]
struct Args {
    /// Inputs submitted at once.
    #[arg(long, default_value_t = 100)]
    inputs: usize,
    /// Inputs sent one at a time (makespan, per-call time).
    #[arg(long, default_value_t = 20)]
    sequential: usize,
    /// Nodes (Jupiter) and worker processes (Dask).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Python with dask[distributed] (bench/peers/setup.sh makes one); none: Jupiter only.
    #[arg(long)]
    dask_python: Option<PathBuf>,
    /// Threads per Dask worker process.
    #[arg(long, default_value_t = 1)]
    dask_threads: usize,
    /// Run only this comparison (default: both).
    #[arg(long, value_enum)]
    only: Option<Only>,
}

const WORK: &str = r#"import hashlib, os

def work(task, filename, pathin, pathout):
    names = sorted(filename) if isinstance(filename, list) else [filename]
    data = b"".join(open(os.path.join(pathin, n), "rb").read() for n in names)
    digest = data
    for _ in range(200):
        digest = hashlib.sha256(digest + data).digest()
    base = names[0].split("_")[0].split(".")[0]
    out = os.path.join(pathout, "%s_%s" % (base, task))
    with open(out, "wb") as f:
        f.write(data[:512] + digest.hex().encode() + b"\n")
    return [out]
"#;

const DAG: &str =
    "5\nsource 1 true left right\nleft 1 true join\nright 1 true join\njoin 2 true sink\nsink 1 true home\n";

fn write_app(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir.join("scripts"))?;
    std::fs::write(dir.join("configuration.txt"), DAG)?;
    std::fs::write(dir.join("scripts/work.py"), WORK)?;
    for task in ["source", "left", "right", "join", "sink"] {
        std::fs::write(
            dir.join(format!("scripts/{task}.py")),
            format!("from work import work\n\ndef task(filename, pathin, pathout):\n    return work({task:?}, filename, pathin, pathout)\n"),
        )?;
    }
    Ok(())
}

fn write_noop(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir.join("scripts"))?;
    std::fs::write(dir.join("configuration.txt"), "1\nnoop 1 true home\n")?;
    std::fs::write(
        dir.join("scripts/noop.py"),
        "import os\n\ndef task(filename, pathin, pathout):\n    out = os.path.join(pathout, filename + '.out')\n    open(out, 'w').close()\n    return [out]\n",
    )?;
    Ok(())
}

fn write_inputs(dir: &Path, n: usize) -> Result<Vec<PathBuf>> {
    write_named_inputs(dir, "in", n)
}

/// `n` inputs `{prefix}0000.txt`…, input `i`'s text the same whatever the prefix.
fn write_named_inputs(dir: &Path, prefix: &str, n: usize) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    (0..n)
        .map(|i| {
            let path = dir.join(format!("{prefix}{i:04}.txt"));
            std::fs::write(
                &path,
                format!("input {i}: {}\n", "lorem ipsum dolor sit amet ".repeat(40)),
            )?;
            Ok(path)
        })
        .collect()
}

/// A local deployment of `app` on `nodes` nodes, its folders under `dir`.
fn local(app: &App, nodes: usize, dir: &Path, fresh: bool) -> Box<Local> {
    Box::new(Local::new(
        &app.name,
        LocalConfig {
            otlp_endpoint: None,
            tls: false,
            nodes,
            workdir: dir.join("work"),
            output: dir.join("out"),
            python: "python3".into(),
            runner: jupiter_common::cli::RunnerFlags {
                fresh_interpreter: fresh,
                ..Default::default()
            },
            probe: Default::default(),
            processes: None,
        },
    ))
}

/// Random mapping, seed 1.
fn random() -> PlacementRequest {
    PlacementRequest {
        scheduler: Scheduler::Random,
        static_mapping: Default::default(),
        seed: 1,
        python: "python3".into(),
        profile: Default::default(),
        replan: Default::default(),
    }
}

async fn run(
    app: &App,
    root: &Path,
    nodes: usize,
    fresh: bool,
    inputs: &[PathBuf],
    pace: Pace,
) -> Result<RunOutcome> {
    let name = format!("{}-{}-{:?}", app.name, if fresh { "fresh" } else { "warm" }, pace);
    let outcome = jupiterctl::run::run(
        local(app, nodes, &root.join(&name), fresh),
        app,
        &random(),
        inputs,
        pace,
        Duration::from_secs(900),
        false,
    )
    .await?;
    if !outcome.all_ok() {
        let bad = outcome.results.iter().find(|r| !r.ok).map(|r| r.error.clone());
        bail!("{name}: some inputs failed: {bad:?}");
    }
    Ok(outcome)
}

/// (inputs/s all at once, median makespan one at a time (client side),
/// median task run ms one at a time), on one deployment warmed with one
/// input first, as Dask's workers are warmed before its clock starts.
async fn jupiter(
    app: &App,
    root: &Path,
    args: &Args,
    fresh: bool,
    all: &[PathBuf],
    one: &[PathBuf],
) -> Result<(f64, f64, f64)> {
    let name = format!("{}-{}", app.name, if fresh { "fresh" } else { "warm" });
    let warm = write_named_inputs(&root.join(format!("{name}-warm-up")), "warm", 1)?;
    let run = jupiter_warmed(app, &root.join(&name), args, fresh, &warm[0], all, one).await?;
    let runs: Vec<f64> = run.tasks_ms.iter().map(|t| t.0).collect();
    Ok((run.inputs_per_s, median(&run.client_ms), median(&runs)))
}

/// Runs `bench/peers/{script}` on `app`'s `inputs`; its JSON object.
fn dask_json(
    python: &Path,
    script: &str,
    app: &Path,
    inputs: &Path,
    work: &Path,
    args: &Args,
) -> Result<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers").join(script);
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(app)
        .arg(inputs)
        .arg(work)
        .args([
            "--workers",
            &args.nodes.to_string(),
            "--threads",
            &args.dask_threads.to_string(),
            "--sequential",
            &args.sequential.to_string(),
        ])
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("{}'s JSON", script.display()))
}

fn dask(python: &Path, app: &Path, inputs: &Path, work: &Path, args: &Args) -> Result<(f64, f64)> {
    let v = dask_json(python, "dask_app.py", app, inputs, work, args)?;
    Ok((
        v["inputs_per_s"].as_f64().unwrap_or(0.0),
        v["sequential_median_ms"].as_f64().unwrap_or(0.0),
    ))
}

/// The original-format Python app, and the no-op per-call figure.
async fn python(args: &Args, root: &Path) -> Result<()> {
    let app_dir = root.join("app");
    write_app(&app_dir)?;
    let app = App::load(&app_dir)?;
    let all = write_inputs(&root.join("inputs"), args.inputs)?;
    // Names of their own: they go through the same deployment as `all`.
    let one = write_named_inputs(&root.join("one"), "seq", args.sequential)?;

    eprintln!("jupiter, warm interpreters...");
    let warm = jupiter(&app, root, args, false, &all, &one).await?;
    eprintln!("jupiter, --fresh-interpreter...");
    let fresh = jupiter(&app, root, args, true, &all, &one).await?;
    let dask = match &args.dask_python {
        Some(python) => {
            eprintln!("dask...");
            Some(dask(
                python,
                &app_dir,
                &root.join("inputs"),
                &root.join("dask"),
                args,
            )?)
        }
        None => None,
    };
    let noop_dir = root.join("noop");
    write_noop(&noop_dir)?;
    let noop = App::load(&noop_dir)?;
    eprintln!("no-op task, warm and fresh...");
    let noop_warm = run(&noop, root, 1, false, &one, Pace::OneAtATime).await?;
    let noop_fresh = run(&noop, root, 1, true, &one, Pace::OneAtATime).await?;
    let per_call = |o: &RunOutcome| {
        median(
            &o.results
                .iter()
                .flat_map(|r| r.tasks.iter().map(|t| t.run_ms))
                .collect::<Vec<_>>(),
        )
    };

    println!(
        "\npeers: original-format app source -> left, right -> join -> sink (Python, 200 SHA-256 rounds per task), {} nodes / workers ({} thread(s) per Dask worker); {} inputs at once, {} one at a time; {}\n",
        args.nodes,
        args.dask_threads,
        args.inputs,
        args.sequential,
        machine()
    );
    println!("| runner | inputs/s (all at once) | vs Dask | makespan, one at a time (median, client side) | vs Dask |");
    println!("|---|---:|---:|---:|---:|");
    let row = |name: &str, (ips, ms): (f64, f64)| {
        let (r1, r2) = dask.map_or(("—".to_string(), "—".to_string()), |(d_ips, d_ms)| {
            (format!("{:.2}×", ips / d_ips), format!("{:.2}×", ms / d_ms))
        });
        println!("| {name} | {ips:.1} | {r1} | {ms:.1} ms | {r2} |");
    };
    row("Jupiter, warm interpreters", (warm.0, warm.1));
    row("Jupiter, --fresh-interpreter", (fresh.0, fresh.1));
    if let Some(d) = dask {
        row("Dask distributed", d);
    }
    println!(
        "\nno-op Python task, time per call (task run, median of {}): warm {:.2} ms, fresh {:.2} ms",
        args.sequential,
        per_call(&noop_warm),
        per_call(&noop_fresh)
    );
    Ok(())
}

/// Jupiter's side of a comparison, on one deployment.
struct ShellRun {
    inputs_per_s: f64,
    /// Submitted to result seen, one input at a time.
    client_ms: Vec<f64>,
    /// The same inputs as circe-home measures them (receipt to last output).
    home_ms: Vec<f64>,
    /// Per task of those inputs: (run, hop, transfer) ms as the workers report them.
    tasks_ms: Vec<(f64, f64, f64)>,
}

/// Warm-up input, then `all` at once, then `one` one at a time, all on one
/// local deployment of `app`.
async fn jupiter_warmed(
    app: &App,
    dir: &Path,
    args: &Args,
    fresh: bool,
    warm: &Path,
    all: &[PathBuf],
    one: &[PathBuf],
) -> Result<ShellRun> {
    let deployment = Deployment::up(local(app, args.nodes, dir, fresh), app, &random())
        .await
        .with_context(|| format!("deploying {}", app.name))?;
    let result = async {
        // DRUPE's first probe round ends before the clock starts, as `up`
        // waits for it with the network-aware schedulers (this bench maps
        // at random, so `up` does not): on 2 cores, a round under the
        // timed inputs adds ~25 ms to each input it overlaps. Dask has no
        // profiler to wait for.
        jupiterctl::deployment::placement::wait_for_nodes(
            &deployment.summary.endpoints().drupe_central,
            args.nodes,
            true,
        )
        .await?;
        let client = jupiterctl::session::client(&deployment.summary.endpoints().circe_home).await?;
        let timeout = Duration::from_secs(900);
        let batch = |files: &[PathBuf]| {
            let files = files.to_vec();
            let client = client.clone();
            async move {
                let watch = jupiterctl::session::watch(&client).await?;
                let ids = jupiterctl::session::submit_all(&client, &files).await?;
                let results =
                    jupiterctl::session::collect(watch, &ids, timeout, false, std::future::pending()).await?;
                if let Some(bad) = results.iter().find(|r| !r.ok) {
                    bail!(
                        "jupiter, {}: input {} failed: {}",
                        app.name,
                        bad.input_id,
                        bad.error
                    );
                }
                anyhow::Ok(results)
            }
        };
        batch(std::slice::from_ref(&warm.to_path_buf())).await?;
        let started = Instant::now();
        batch(all).await?;
        let wall = started.elapsed();
        let (mut client_ms, mut home_ms, mut tasks_ms) = (Vec::new(), Vec::new(), Vec::new());
        for file in one {
            // The watch is set up before the clock, as Dask's client is.
            let watch = jupiterctl::session::watch(&client).await?;
            let t0 = Instant::now();
            let ids = jupiterctl::session::submit_all(&client, std::slice::from_ref(file)).await?;
            let results =
                jupiterctl::session::collect(watch, &ids, timeout, false, std::future::pending()).await?;
            client_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
            for r in &results {
                if !r.ok {
                    bail!("jupiter, {}: input {} failed: {}", app.name, r.input_id, r.error);
                }
                home_ms.push(r.makespan_ms);
                tasks_ms.extend(r.tasks.iter().map(|t| (t.run_ms, t.hop_ms, t.transfer_ms)));
            }
        }
        anyhow::Ok(ShellRun {
            inputs_per_s: all.len() as f64 / wall.as_secs_f64(),
            client_ms,
            home_ms,
            tasks_ms,
        })
    }
    .await;
    if let Err(e) = deployment.down().await {
        eprintln!("warning: taking {} down: {e}", app.name);
    }
    result
}

/// Every timed input's egress outputs, Jupiter's (`<out>/<input id>/*`)
/// against Dask's (the paths its JSON lists): same names, same bytes.
fn same_outputs(jupiter_out: &Path, dask: &serde_json::Value, all: &[PathBuf]) -> Result<usize> {
    let mut files = 0;
    for input in all {
        let id = jupiterctl::session::input_id(input);
        let mut ours: Vec<PathBuf> = std::fs::read_dir(jupiter_out.join(&id))
            .with_context(|| format!("Jupiter's outputs of {id}"))?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        ours.sort();
        let mut theirs: Vec<PathBuf> = dask["outputs"][&id]
            .as_array()
            .with_context(|| format!("Dask reported no outputs for {id}"))?
            .iter()
            .filter_map(|p| p.as_str().map(PathBuf::from))
            .collect();
        theirs.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        let names = |v: &[PathBuf]| {
            v.iter()
                .map(|p| p.file_name().map(|n| n.to_owned()))
                .collect::<Vec<_>>()
        };
        if ours.is_empty() || names(&ours) != names(&theirs) {
            bail!(
                "outputs of {id} differ: Jupiter wrote {:?}, Dask {:?}",
                names(&ours),
                names(&theirs)
            );
        }
        for (a, b) in ours.iter().zip(&theirs) {
            if std::fs::read(a)? != std::fs::read(b)? {
                bail!(
                    "outputs of {id} differ: {} and {} do not hold the same bytes",
                    a.display(),
                    b.display()
                );
            }
            files += 1;
        }
    }
    Ok(files)
}

/// The app.yaml app of /bin/sh tasks, Jupiter against Dask.
async fn shell(args: &Args, root: &Path) -> Result<()> {
    let app_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/shell_app");
    let app = App::load(&app_dir).context("loading bench/peers/shell_app")?;
    let dir = root.join("shell");
    let all = write_inputs(&dir.join("inputs"), args.inputs)?;
    let one = write_named_inputs(&dir.join("one"), "seq", args.sequential)?;
    let warm = write_named_inputs(&dir.join("warm"), "warm", 1)?;

    eprintln!("shell app: jupiter...");
    let jup = jupiter_warmed(&app, &dir.join("jupiter"), args, false, &warm[0], &all, &one).await?;
    let dask = match &args.dask_python {
        Some(python) => {
            eprintln!("shell app: dask...");
            let v = dask_json(
                python,
                "dask_shell.py",
                &app_dir,
                &dir.join("inputs"),
                &dir.join("dask"),
                args,
            )?;
            let files = same_outputs(&dir.join("jupiter/out"), &v, &all)?;
            Some((
                v["inputs_per_s"].as_f64().unwrap_or(0.0),
                v["sequential_median_ms"].as_f64().unwrap_or(0.0),
                files,
                v["sequential_task_run_median_ms"].as_f64().unwrap_or(0.0),
            ))
        }
        None => None,
    };

    let (ips, ms) = (jup.inputs_per_s, median(&jup.client_ms));
    println!(
        "\npeers, shell: bench/peers/shell_app, source -> left, right -> join -> sink, /bin/sh tasks (tr, sort, uniq, paste, wc, cksum), {} nodes / {} Dask workers of {} thread(s); {} inputs at once, {} one at a time; {}\n",
        args.nodes,
        args.nodes,
        args.dask_threads,
        args.inputs,
        args.sequential,
        machine()
    );
    println!("| runner | inputs/s (all at once) | vs Dask | makespan, one at a time (median, client side) | vs Dask |");
    println!("|---|---:|---:|---:|---:|");
    match dask {
        Some((d_ips, d_ms, files, d_run)) => {
            println!(
                "| Jupiter | {ips:.1} | {:.2}× | {ms:.1} ms | {:.2}× |",
                ips / d_ips,
                ms / d_ms
            );
            println!("| Dask distributed | {d_ips:.1} | 1.00× | {d_ms:.1} ms | 1.00× |");
            let verdict = |ok: bool| if ok { "MET" } else { "NOT MET" };
            println!(
                "\ngoals (issue 11): throughput ≥ 1.5× Dask's: {:.2}× {}; makespan ≤ 0.5× Dask's: {:.2}× {}",
                ips / d_ips,
                verdict(ips / d_ips >= 1.5),
                ms / d_ms,
                verdict(ms / d_ms <= 0.5)
            );
            println!(
                "outputs: Jupiter's and Dask's sink outputs byte-identical for all {} inputs ({files} files)",
                all.len()
            );
            println!("Dask, one at a time: per task (median): subprocess.run {d_run:.1} ms");
        }
        None => println!("| Jupiter | {ips:.1} | — | {ms:.1} ms | — |"),
    }
    let per_task = |f: fn(&(f64, f64, f64)) -> f64| median(&jup.tasks_ms.iter().map(f).collect::<Vec<_>>());
    println!(
        "Jupiter, one at a time: makespan as circe-home measures it (receipt to last output) {:.1} ms; per task (median): run {:.1} ms, hop {:.1} ms, transfer {:.1} ms",
        median(&jup.home_ms),
        per_task(|t| t.0),
        per_task(|t| t.1),
        per_task(|t| t.2)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let root = tempfile::Builder::new().prefix("jupiter-bench-peers").tempdir()?;
    let root = root.path();
    if args.only != Some(Only::Shell) {
        python(&args, root).await?;
    }
    if args.only != Some(Only::Python) {
        shell(&args, root).await?;
    }
    Ok(())
}
