//! Mapping benchmark: does a network-aware mapping make inputs finish
//! sooner on a heterogeneous network? The Jupiter paper (Ghosh et al.,
//! arXiv 1912.10643) reports that distributed WAVE-greedy performs close to
//! HEFT and that both beat random placement.
//!
//! One emulated testbed on the Docker backend: four nodes of 0.25, 0.5, 1.0
//! and 1.5 CPUs whose containers are shaped to 5, 20, 50 and 200 Mbit/s.
//! `examples/mapping` (CPU-heavy Python tasks, MB-sized edges, a fan-out and
//! a join) runs on a fresh deployment per scheduler and seed, its inputs one
//! at a time, so every makespan is one input alone on an idle deployment,
//! which is what the schedulers predict.
//!
//! Prints a table (measured median makespan, predicted makespan, ratio to
//! random's median) and writes the results as JSON and a bar chart (SVG).

use anyhow::{bail, Context, Result};
use clap::Parser;
use jupiter_bench::{machine, median};
use jupiter_common::app::App;
use jupiterctl::deployment::{PlacementRequest, Scheduler};
use jupiterctl::docker::engine::Engine;
use jupiterctl::docker::{Docker, DockerConfig, Images};
use jupiterctl::node_list::NodeSpec;
use jupiterctl::session::Pace;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    about = "Measured and predicted makespan of heft, cpop, wave-greedy, wave-random and random \
             on an emulated heterogeneous Docker testbed"
)]
struct Args {
    /// The app (its sample inputs are sent, one at a time).
    #[arg(long, default_value = "examples/mapping")]
    app: PathBuf,
    /// Inputs per deployment (the first N sample inputs).
    #[arg(long, default_value_t = 10)]
    inputs: usize,
    /// Seeds of the random schedulers (random, wave-random).
    #[arg(long, default_value_t = 5)]
    seeds: u64,
    /// Schedulers to measure, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "heft,cpop,wave-greedy,wave-random,random"
    )]
    schedulers: Vec<String>,
    /// Tag of the role images (built with docker/build-images.sh TAG when missing).
    #[arg(long, default_value = "dev")]
    image_tag: String,
    /// Where the JSON results go.
    #[arg(long, default_value = "bench/results/mapping.json")]
    json: PathBuf,
    /// Where the bar chart goes.
    #[arg(long, default_value = "bench/results/mapping.svg")]
    chart: PathBuf,
}

/// The testbed: (name, CPUs, Mbit/s).
const TESTBED: &[(&str, f64, u64)] = &[
    ("edge0", 0.25, 5),
    ("edge1", 0.5, 20),
    ("edge2", 1.0, 50),
    ("cloud0", 1.5, 200),
];

fn testbed() -> Vec<NodeSpec> {
    TESTBED
        .iter()
        .map(|&(name, cpus, mbit)| NodeSpec {
            name: name.into(),
            cpus,
            memory_bytes: 512 << 20,
            bandwidth_bits_per_sec: Some(mbit * 1_000_000),
            delay: None,
        })
        .collect()
}

fn scheduler(name: &str) -> Result<Scheduler> {
    Ok(match name {
        "heft" => Scheduler::Heft,
        "cpop" => Scheduler::Cpop,
        "wave-greedy" => Scheduler::WaveGreedy,
        "wave-random" => Scheduler::WaveRandom,
        "random" => Scheduler::Random,
        other => {
            bail!("--schedulers: unknown scheduler {other:?} (heft, cpop, wave-greedy, wave-random, random)")
        }
    })
}

/// One deployment's measurements.
#[derive(Debug, Clone, serde::Serialize)]
struct Trial {
    scheduler: String,
    seed: u64,
    mapping: BTreeMap<String, String>,
    predicted_ms: f64,
    makespans_ms: Vec<f64>,
    failed: usize,
    startup_ms: f64,
}

impl Trial {
    fn median_ms(&self) -> f64 {
        median(&self.makespans_ms)
    }
}

/// A scheduler's trials together (one, or one per seed).
#[derive(Debug)]
struct Row {
    scheduler: String,
    /// Median over its trials of each trial's median makespan.
    measured_ms: f64,
    /// Median over its trials of the predicted makespan (0 when none).
    predicted_ms: f64,
    /// Smallest and largest trial medians (the spread over seeds).
    range_ms: (f64, f64),
    trials: usize,
}

fn rows(trials: &[Trial], order: &[String]) -> Vec<Row> {
    order
        .iter()
        .filter_map(|name| {
            let mine: Vec<&Trial> = trials.iter().filter(|t| &t.scheduler == name).collect();
            if mine.is_empty() {
                return None;
            }
            let medians: Vec<f64> = mine.iter().map(|t| t.median_ms()).collect();
            let predicted: Vec<f64> = mine.iter().map(|t| t.predicted_ms).collect();
            Some(Row {
                scheduler: name.clone(),
                measured_ms: median(&medians),
                predicted_ms: median(&predicted),
                range_ms: (
                    medians.iter().cloned().fold(f64::INFINITY, f64::min),
                    medians.iter().cloned().fold(0.0, f64::max),
                ),
                trials: mine.len(),
            })
        })
        .collect()
}

fn table(rows: &[Row]) -> String {
    let random = rows
        .iter()
        .find(|r| r.scheduler == "random")
        .map(|r| r.measured_ms);
    let mut out = String::from(
        "| scheduler | deployments | measured median makespan | spread over seeds | predicted | measured / predicted | vs random's median |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let predicted = if r.predicted_ms > 0.0 {
            format!("{:.0} ms", r.predicted_ms)
        } else {
            "—".into()
        };
        let accuracy = if r.predicted_ms > 0.0 {
            format!("{:+.0}%", (r.measured_ms / r.predicted_ms - 1.0) * 100.0)
        } else {
            "—".into()
        };
        let spread = if r.trials > 1 {
            format!("{:.0}–{:.0} ms", r.range_ms.0, r.range_ms.1)
        } else {
            "—".into()
        };
        let ratio = random.map_or("—".into(), |m| format!("{:.2}×", r.measured_ms / m));
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} ms | {spread} | {predicted} | {accuracy} | {ratio} |",
            r.scheduler, r.trials, r.measured_ms
        );
    }
    out
}

/// Bars of the measured median makespan per scheduler, with the spread
/// over seeds as a whisker and the prediction as a tick.
fn chart(rows: &[Row], title: &str) -> String {
    let (w, h, left, bottom, top) = (760.0, 420.0, 70.0, 60.0, 50.0);
    let max = rows
        .iter()
        .map(|r| r.range_ms.1.max(r.predicted_ms).max(r.measured_ms))
        .fold(1.0, f64::max)
        * 1.1;
    let plot_h = h - bottom - top;
    let y = |ms: f64| top + plot_h * (1.0 - ms / max);
    let slot = (w - left - 20.0) / rows.len().max(1) as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"13\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{title}</text>\n",
        w / 2.0
    );
    let step = nice_step(max / 5.0);
    let mut tick = 0.0;
    while tick <= max {
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{:.1} s</text>",
            w - 20.0,
            left - 6.0,
            y(tick) + 4.0,
            tick / 1000.0,
            y = y(tick)
        );
        tick += step;
    }
    for (i, r) in rows.iter().enumerate() {
        let x = left + slot * i as f64 + slot * 0.2;
        let bw = slot * 0.6;
        let colour = match r.scheduler.as_str() {
            "random" | "wave-random" => "#b0b0b0",
            _ => "#3a78c2",
        };
        let _ = writeln!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{:.2} s</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            y(r.measured_ms),
            h - bottom - y(r.measured_ms),
            x + bw / 2.0,
            y(r.measured_ms) - 6.0,
            r.measured_ms / 1000.0,
            x + bw / 2.0,
            h - bottom + 18.0,
            r.scheduler
        );
        if r.trials > 1 {
            let cx = x + bw / 2.0;
            let _ = writeln!(
                svg,
                "<line x1=\"{cx:.1}\" x2=\"{cx:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"black\"/>",
                y(r.range_ms.0),
                y(r.range_ms.1)
            );
        }
        if r.predicted_ms > 0.0 {
            let _ = writeln!(
                svg,
                "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{py:.1}\" y2=\"{py:.1}\" stroke=\"#d9480f\" stroke-width=\"3\"/>",
                x - 4.0,
                x + bw + 4.0,
                py = y(r.predicted_ms)
            );
        }
    }
    let _ = writeln!(
        svg,
        "<text x=\"{left}\" y=\"{:.1}\" font-size=\"12\">bars: measured median makespan (one input alone); \
         black: spread over seeds; orange: predicted</text>\n</svg>",
        h - 14.0
    );
    svg
}

fn nice_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
}

async fn ensure_images(engine: &Engine, tag: &str) -> Result<()> {
    let images = Images {
        prefix: "jupiter".into(),
        tag: tag.into(),
    };
    let mut missing = false;
    for role in jupiter_common::role::Role::ALL {
        missing |= !engine.has_image(&images.of(role)).await;
    }
    if missing {
        eprintln!("role images jupiter/*:{tag} missing: building them (docker/build-images.sh {tag})...");
        let status = tokio::process::Command::new("bash")
            .arg("docker/build-images.sh")
            .arg(tag)
            .status()
            .await
            .context("running docker/build-images.sh")?;
        if !status.success() {
            bail!("docker/build-images.sh {tag} failed");
        }
    }
    Ok(())
}

async fn trial(app: &App, name: &str, seed: u64, args: &Args, output: &Path) -> Result<Trial> {
    let config = DockerConfig {
        otlp_endpoint: None,
        nodes: testbed(),
        images: Images {
            prefix: "jupiter".into(),
            tag: args.image_tag.clone(),
        },
        output: output.to_path_buf(),
        probe: Default::default(),
        runner: Default::default(),
        tls: false,
    };
    let backend = Box::new(Docker::new(&app.name, config).await?);
    let request = PlacementRequest {
        scheduler: scheduler(name)?,
        static_mapping: BTreeMap::new(),
        seed,
        python: "python3".into(),
        profile: Default::default(),
        replan: Default::default(),
    };
    let inputs: Vec<PathBuf> = jupiterctl::session::expand_inputs(&app.sample_inputs)?
        .into_iter()
        .take(args.inputs)
        .collect();
    let outcome = jupiterctl::run::run(
        backend,
        app,
        &request,
        &inputs,
        Pace::OneAtATime,
        Duration::from_secs(900),
        false,
    )
    .await
    .with_context(|| format!("{name} (seed {seed})"))?;
    let failed = outcome.results.iter().filter(|r| !r.ok).count();
    if let Some(bad) = outcome.results.iter().find(|r| !r.ok) {
        eprintln!("  warning: input {} failed: {}", bad.input_id, bad.error);
    }
    Ok(Trial {
        scheduler: name.to_string(),
        seed,
        mapping: outcome.summary.mapping.clone().into_iter().collect(),
        predicted_ms: outcome.summary.predicted_makespan_secs * 1000.0,
        makespans_ms: outcome
            .results
            .iter()
            .filter(|r| r.ok)
            .map(|r| r.makespan_ms)
            .collect(),
        failed,
        startup_ms: outcome.summary.startup.as_secs_f64() * 1000.0,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let app = App::load(&args.app)?;
    let engine = Engine::connect()
        .await
        .context("the mapping benchmark runs on the Docker backend")?;
    ensure_images(&engine, &args.image_tag).await?;
    let scratch = tempfile::Builder::new()
        .prefix("jupiter-bench-mapping-")
        .tempdir()?;
    let mut trials = Vec::new();
    for name in &args.schedulers {
        scheduler(name)?;
        let seeds: Vec<u64> = if matches!(name.as_str(), "random" | "wave-random") {
            (1..=args.seeds).collect()
        } else {
            vec![1]
        };
        for seed in seeds {
            eprint!("{name} (seed {seed}): ");
            let output = scratch.path().join(format!("{name}-{seed}"));
            std::fs::create_dir_all(&output)?;
            let t = trial(&app, name, seed, &args, &output.canonicalize()?).await?;
            eprintln!(
                "median {:.0} ms, predicted {:.0} ms, {} failed; {}",
                t.median_ms(),
                t.predicted_ms,
                t.failed,
                t.mapping
                    .iter()
                    .map(|(t, n)| format!("{t}->{n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            trials.push(t);
        }
    }
    let rows = rows(&trials, &args.schedulers);
    let testbed: Vec<String> = TESTBED
        .iter()
        .map(|(n, c, b)| format!("{n} {c} CPU {b} Mbit/s"))
        .collect();
    println!(
        "\n{} inputs one at a time per deployment; testbed: {}; {}\n",
        args.inputs,
        testbed.join(", "),
        machine()
    );
    print!("{}", table(&rows));
    for path in [&args.json, &args.chart] {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
    }
    std::fs::write(
        &args.json,
        serde_json::to_string_pretty(&json!({
            "testbed": testbed,
            "inputs": args.inputs,
            "machine": machine(),
            "trials": trials,
        }))?,
    )?;
    std::fs::write(
        &args.chart,
        chart(
            &rows,
            &format!(
                "{}: median makespan of one input, 4 heterogeneous Docker nodes",
                app.name
            ),
        ),
    )?;
    println!(
        "\nresults in {}, chart in {}",
        args.json.display(),
        args.chart.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(scheduler: &str, seed: u64, median_ms: f64, predicted_ms: f64) -> Trial {
        Trial {
            scheduler: scheduler.into(),
            seed,
            mapping: BTreeMap::new(),
            predicted_ms,
            makespans_ms: vec![median_ms - 10.0, median_ms, median_ms + 10.0],
            failed: 0,
            startup_ms: 0.0,
        }
    }

    #[test]
    fn rows_take_the_median_over_seeds_and_ratios_against_random() {
        let trials = [
            trial("heft", 1, 1000.0, 900.0),
            trial("random", 1, 2000.0, 0.0),
            trial("random", 2, 3000.0, 0.0),
            trial("random", 3, 4000.0, 0.0),
        ];
        let order = vec!["heft".to_string(), "random".to_string()];
        let rows = rows(&trials, &order);
        assert_eq!(rows[1].measured_ms, 3000.0);
        assert_eq!(rows[1].range_ms, (2000.0, 4000.0));
        let table = table(&rows);
        assert!(
            table.contains("| heft | 1 | 1000 ms | — | 900 ms | +11% | 0.33× |"),
            "{table}"
        );
        let svg = chart(&rows, "t");
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{svg}"
        );
        assert_eq!(svg.matches("<rect x=").count(), 2, "{svg}");
    }
}
