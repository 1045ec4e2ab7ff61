//! Peer benchmark: an original-format Python app through Jupiter and through
//! Dask distributed, the same task functions on the same inputs, in one run.
//!
//! The app (written at run time): `source -> left, right -> join -> sink`,
//! each task a few SHA-256 rounds over its input. Jupiter runs it on 3
//! local nodes with warm interpreters (the default) and with
//! `--fresh-interpreter` (one interpreter per input, as before); Dask runs
//! it on a `LocalCluster` of 3 single-threaded worker processes, each having
//! imported the scripts once (`bench/peers/dask_app.py`). Per side: inputs/s
//! with every input submitted at once, and the median makespan of inputs
//! sent one at a time. Also a one-task no-op app: Jupiter's time per call
//! of a Python task, warm and fresh.

use anyhow::{bail, Context, Result};
use clap::Parser;
use jupiter_bench::{machine, median};
use jupiter_common::app::App;
use jupiterctl::deployment::{PlacementRequest, Scheduler};
use jupiterctl::local::{Local, LocalConfig};
use jupiterctl::run::RunOutcome;
use jupiterctl::session::Pace;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "An original-format Python app through Jupiter (warm and fresh interpreters) and Dask")]
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
    std::fs::create_dir_all(dir)?;
    (0..n)
        .map(|i| {
            let path = dir.join(format!("in{i:04}.txt"));
            std::fs::write(
                &path,
                format!("input {i}: {}\n", "lorem ipsum dolor sit amet ".repeat(40)),
            )?;
            Ok(path)
        })
        .collect()
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
    let backend = Local::new(
        &app.name,
        LocalConfig {
            nodes,
            workdir: root.join(&name).join("work"),
            output: root.join(&name).join("out"),
            python: "python3".into(),
            fresh_interpreter: fresh,
            probe: Default::default(),
        },
    );
    let request = PlacementRequest {
        scheduler: Scheduler::Random,
        static_mapping: Default::default(),
        seed: 1,
        python: "python3".into(),
        profile: Default::default(),
    };
    let outcome = jupiterctl::run::run(
        Box::new(backend),
        app,
        &request,
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

/// (inputs/s all at once, median makespan one at a time, median task run ms one at a time).
async fn jupiter(
    app: &App,
    root: &Path,
    args: &Args,
    fresh: bool,
    all: &[PathBuf],
    one: &[PathBuf],
) -> Result<(f64, f64, f64)> {
    let burst = run(app, root, args.nodes, fresh, all, Pace::AllAtOnce).await?;
    let seq = run(app, root, args.nodes, fresh, one, Pace::OneAtATime).await?;
    let makespans: Vec<f64> = seq.results.iter().map(|r| r.makespan_ms).collect();
    let runs: Vec<f64> = seq
        .results
        .iter()
        .flat_map(|r| r.tasks.iter().map(|t| t.run_ms))
        .collect();
    Ok((
        all.len() as f64 / burst.wall.as_secs_f64(),
        median(&makespans),
        median(&runs),
    ))
}

fn dask(python: &Path, app: &Path, inputs: &Path, work: &Path, args: &Args) -> Result<(f64, f64)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/dask_app.py");
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(app)
        .arg(inputs)
        .arg(work)
        .args([
            "--workers",
            &args.nodes.to_string(),
            "--sequential",
            &args.sequential.to_string(),
        ])
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!("dask_app.py failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("dask_app.py's JSON")?;
    Ok((
        v["inputs_per_s"].as_f64().unwrap_or(0.0),
        v["sequential_median_ms"].as_f64().unwrap_or(0.0),
    ))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let root = tempfile::Builder::new().prefix("jupiter-bench-peers").tempdir()?;
    let root = root.path();
    let app_dir = root.join("app");
    write_app(&app_dir)?;
    let app = App::load(&app_dir)?;
    let all = write_inputs(&root.join("inputs"), args.inputs)?;
    let one = write_inputs(&root.join("one"), args.sequential)?;

    eprintln!("jupiter, warm interpreters...");
    let warm = jupiter(&app, root, &args, false, &all, &one).await?;
    eprintln!("jupiter, --fresh-interpreter...");
    let fresh = jupiter(&app, root, &args, true, &all, &one).await?;
    let dask = match &args.dask_python {
        Some(python) => {
            eprintln!("dask...");
            Some(dask(
                python,
                &app_dir,
                &root.join("inputs"),
                &root.join("dask"),
                &args,
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
        "\npeers: original-format app source -> left, right -> join -> sink (Python, 200 SHA-256 rounds per task), {} nodes / workers; {} inputs at once, {} one at a time; {}\n",
        args.nodes,
        args.inputs,
        args.sequential,
        machine()
    );
    println!("| runner | inputs/s (all at once) | vs Dask | makespan, one at a time (median) | vs Dask |");
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
