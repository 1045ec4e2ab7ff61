//! The picture of a run without Grafana, through the real binary:
//! `jupiterctl run --report` writes a page that headless Chromium renders
//! (a screenshot that is not blank, every task of the app in its DOM), and
//! on a deployment started with `jupiterctl up`, `report` writes the page
//! and `trace INPUT` prints every task of one input with its queue wait,
//! run and transfer.

use jupiter_common::app::App;
use jupiter_tests::cli::{down, Up};
use jupiter_tests::{example, jupiterctl_bin, Sandbox};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::process::Command;

/// The app both tests run: 7 tasks with fan-out and joins.
const APP: &str = "dummy_app";

fn task_names() -> Vec<String> {
    App::load(&example(APP))
        .expect("example app loads")
        .tasks
        .into_iter()
        .map(|t| t.name)
        .collect()
}

/// `name` on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Debian's `chromium`, installed with apt-get when missing (once per test
/// binary: two installs at once would fight over dpkg's lock).
async fn chromium() -> PathBuf {
    static FOUND: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    FOUND
        .get_or_init(|| async {
            if let Some(found) = on_path("chromium") {
                return found;
            }
            eprintln!("chromium is missing: installing the Debian package with apt-get");
            let apt = |args: &'static [&'static str]| async move {
                Command::new("apt-get")
                    .args(args)
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .stdin(Stdio::null())
                    .status()
                    .await
                    .is_ok_and(|s| s.success())
            };
            // Package lists may be missing or stale in a fresh container.
            if !apt(&["install", "-y", "-q", "chromium"]).await {
                apt(&["update", "-q"]).await;
                apt(&["install", "-y", "-q", "chromium"]).await;
            }
            on_path("chromium").expect(
                "this test renders the report in headless Chromium, and `apt-get install -y chromium` did not \
                 install it (it needs root and a Debian package mirror)",
            )
        })
        .await
        .clone()
}

/// Runs headless Chromium with `args` (its profile in `sandbox`), within 2 minutes.
async fn headless(sandbox: &Sandbox, args: &[String]) -> Output {
    let profile = sandbox.path("chromium-profile");
    let run = Command::new(chromium().await)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("chromium finished within 120 s")
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn url(page: &Path) -> String {
    format!("file://{}", page.display())
}

/// The page as Chromium parsed and laid it out.
async fn dom(sandbox: &Sandbox, page: &Path) -> String {
    let out = headless(sandbox, &["--dump-dom".to_string(), url(page)]).await;
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (distinct colours, share of pixels that are not near-white) of a PNG.
fn colours(png_file: &Path) -> (usize, f64) {
    let file =
        std::fs::File::open(png_file).unwrap_or_else(|e| panic!("screenshot {}: {e}", png_file.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .expect("a PNG header");
    let mut buffer = vec![0; reader.output_buffer_size().expect("a screenshot fits in memory")];
    let info = reader.next_frame(&mut buffer).expect("a PNG frame");
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "Chromium writes 8-bit PNGs");
    let samples = info.color_type.samples();
    assert!(samples >= 3, "a colour screenshot: {:?}", info.color_type);
    let pixels = &buffer[..info.buffer_size()];
    let mut distinct = HashSet::new();
    let mut inked = 0usize;
    let mut total = 0usize;
    for row in pixels.chunks(info.line_size) {
        for pixel in row.chunks_exact(samples) {
            let rgb = [pixel[0], pixel[1], pixel[2]];
            distinct.insert(rgb);
            inked += usize::from(rgb.iter().any(|&c| c < 235));
            total += 1;
        }
    }
    (distinct.len(), inked as f64 / total.max(1) as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_writes_a_report_that_chromium_renders() {
    let sandbox = Sandbox::new();
    let bin = jupiterctl_bin().await;
    let page = sandbox.path("run.html");
    let app = example(APP);
    let out = Command::new(&bin)
        .arg("run")
        .arg(&app)
        .arg("--report")
        .arg(&page)
        .arg("--output")
        .arg(sandbox.path("output"))
        .arg("--workdir")
        .arg(sandbox.path("work"))
        .arg("--quiet")
        .env("JUPITER_STATE", sandbox.path("state.json"))
        .current_dir(sandbox.dir.path())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("jupiterctl run starts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "run failed:\n{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains(&format!("report written to {}", page.display())),
        "run says where the report went: {stderr}"
    );
    let html = std::fs::read_to_string(&page).expect("the report was written");
    assert!(html.contains("class=\"run\""), "the timeline has run bars");

    let shot = sandbox.path("shot.png");
    headless(
        &sandbox,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,1800".to_string(),
            "--hide-scrollbars".to_string(),
            url(&page),
        ],
    )
    .await;
    assert!(shot.is_file(), "chromium wrote the screenshot {}", shot.display());
    let (distinct, inked) = colours(&shot);
    eprintln!(
        "screenshot: {distinct} distinct colours, {:.1}% not white",
        inked * 100.0
    );
    assert!(
        distinct >= 50,
        "a page with coloured charts, not a blank one: {distinct} colours"
    );
    assert!(
        inked > 0.02,
        "the page is drawn on: {:.2}% of pixels not white",
        inked * 100.0
    );

    let dom = dom(&sandbox, &page).await;
    assert!(dom.contains("<svg"), "the charts are in the rendered page");
    for task in task_names() {
        assert!(dom.contains(&task), "task {task} is in the rendered page");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_and_trace_of_an_up_deployment() {
    let sandbox = Sandbox::new();
    let Up {
        cli, process: mut up, ..
    } = Up::start(&sandbox, &example(APP), 5).await;
    let inputs = example(APP).join("sample_input");
    let submit = cli
        .command(&["submit", &inputs.display().to_string(), "--timeout", "300"])
        .stdin(Stdio::null())
        .output()
        .await
        .expect("jupiterctl submit runs");
    assert!(
        submit.status.success(),
        "submit failed:\n{}\n{}",
        String::from_utf8_lossy(&submit.stdout),
        String::from_utf8_lossy(&submit.stderr)
    );
    let tasks = task_names();

    // `--state` given explicitly (the other commands find it through
    // JUPITER_STATE, as `Cli` sets it).
    let page = sandbox.path("up.html");
    let (state, page_arg) = (cli.state.display().to_string(), page.display().to_string());
    let report = cli
        .command(&["report", "--state", &state, "-o", &page_arg])
        .output()
        .await
        .expect("jupiterctl report runs");
    let stderr = String::from_utf8_lossy(&report.stderr);
    assert!(report.status.success(), "report failed: {stderr}");
    assert!(
        stderr.contains(&format!("report written to {page_arg}")),
        "{stderr}"
    );
    let html = std::fs::read_to_string(&page).expect("the report was written");
    for task in &tasks {
        assert!(html.contains(&format!(">{task}</text>")), "the DAG draws {task}");
    }
    assert!(
        html.contains("3 ok, 0 failed"),
        "the header counts the sample inputs"
    );

    let input = "1botnet.ipsum";
    let trace = cli.command(&["trace", input]).output().await.expect("trace runs");
    let tree = String::from_utf8_lossy(&trace.stdout);
    assert!(
        trace.status.success(),
        "trace failed: {}",
        String::from_utf8_lossy(&trace.stderr)
    );
    eprintln!("{tree}");
    assert!(tree.starts_with(&format!("input {input}")), "{tree}");
    for task in &tasks {
        assert!(
            tree.lines()
                .any(|l| (l.starts_with("├─ ") || l.starts_with("└─ "))
                    && l.contains(&format!("{task} @node"))),
            "trace shows {task} and its node:\n{tree}"
        );
    }
    for part in ["queue wait", "run", "transfer"] {
        let lines = tree
            .lines()
            .filter(|l| {
                l.trim_start_matches(['│', ' ', '├', '└', '─'])
                    .starts_with(&format!("{part} "))
            })
            .count();
        assert_eq!(lines, tasks.len(), "a {part} line per task:\n{tree}");
    }
    // Every line of a task's parts is placed on the timeline.
    assert!(!tree.contains(" ? "), "every part has an offset:\n{tree}");

    let missing = cli
        .command(&["trace", "no-such-input"])
        .output()
        .await
        .expect("trace runs");
    let error = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success(), "an unknown input fails");
    assert!(
        error.contains("no-such-input") && error.contains(input),
        "the error names the input and lists known ones: {error}"
    );

    down(&cli, &mut up).await;
}
