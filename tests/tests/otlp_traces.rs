//! Traces of real runs, as a collector receives them: the legacy example
//! on three local nodes with every role exporting to a real OTLP/gRPC
//! receiver. Each input is one trace, from circe-home's Submit through
//! every worker it passed, with parents linked across processes and span
//! times equal to the task reports'. An endpoint that never answers
//! holds nothing up.

use jupiter_common::app::App;
use jupiter_tests::otlp::{BlackHole, Received, Receiver};
use jupiter_tests::{example, random, scheduled, Sandbox};
use jupiterctl::deployment::{PlacementRequest, Scheduler};
use jupiterctl::local::Local;
use jupiterctl::run::RunOutcome;
use jupiterctl::session::Pace;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

/// The tests of this file one at a time: each runs a whole deployment and
/// times it, and three at once on two cores would time the machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn run(
    sandbox: &Sandbox,
    app: &App,
    placement: &PlacementRequest,
    endpoint: Option<String>,
    inputs: &[PathBuf],
) -> RunOutcome {
    let mut config = sandbox.local_config(3);
    config.otlp_endpoint = endpoint;
    let outcome = jupiterctl::run::run(
        Box::new(Local::new(&app.name, config)),
        app,
        placement,
        inputs,
        Pace::AllAtOnce,
        Duration::from_secs(120),
        false,
    )
    .await
    .expect("run completes");
    assert!(outcome.all_ok(), "{:?}", outcome.results);
    outcome
}

fn named<'a>(spans: &'a [Received], name: &str) -> impl Iterator<Item = &'a Received> + 'a {
    let name = name.to_string();
    spans.iter().filter(move |s| s.span.name == name)
}

fn of_input<'a>(spans: &'a [Received], input: &str) -> impl Iterator<Item = &'a Received> + 'a {
    let input = input.to_string();
    spans
        .iter()
        .filter(move |s| s.attribute("jupiter.input_id").as_deref() == Some(input.as_str()))
}

fn close(what: &str, span_ms: f64, report_ms: f64) {
    assert!(
        (span_ms - report_ms).abs() <= 5.0,
        "{what}: the span lasts {span_ms:.3} ms, the task report says {report_ms:.3} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_input_is_one_trace_across_every_role_it_passed() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let receiver = Receiver::start().await;
    let sandbox = Sandbox::new();
    let app = App::load(&example("dummy_app")).expect("the legacy example loads");
    // HEFT: the deployment waits for a whole DRUPE round and asks
    // wave-home for the mapping, so those are traced too.
    let heft = scheduled(Scheduler::Heft, 0);
    let outcome = run(&sandbox, &app, &heft, Some(receiver.url.clone()), &[]).await;
    assert_eq!(outcome.results.len(), 3);
    let tasks: Vec<String> = app.tasks.iter().map(|t| t.name.clone()).collect();

    // The roles flush on their way down, so everything is there by now;
    // the wait only covers a slow receiver.
    let spans = receiver
        .wait_for(Duration::from_secs(10), |spans| {
            outcome.results.iter().all(|r| {
                named(spans, "input").any(|s| s.attribute("jupiter.input_id").as_deref() == Some(&r.input_id))
                    && tasks
                        .iter()
                        .all(|t| of_input(spans, &r.input_id).any(|s| s.span.name == format!("task {t}")))
            })
        })
        .await;
    let by_id: BTreeMap<String, &Received> = spans.iter().map(|s| (s.span_id(), s)).collect();

    for result in &outcome.results {
        let input = &result.input_id;
        // Exactly one trace carries the input.
        let traces: BTreeSet<String> = of_input(&spans, input).map(Received::trace_id).collect();
        assert_eq!(traces.len(), 1, "input {input} is in traces {traces:?}");
        let trace = traces.into_iter().next().expect("one trace");
        let in_trace: Vec<&Received> = spans.iter().filter(|s| s.trace_id() == trace).collect();

        // One root (circe-home's Submit call); every other span's parent
        // was received too: no link is broken across the processes.
        let roots: Vec<&&Received> = in_trace
            .iter()
            .filter(|s| s.span.parent_span_id.is_empty())
            .collect();
        assert_eq!(
            roots.len(),
            1,
            "input {input}: roots {:?}",
            roots.iter().map(|s| &s.span.name).collect::<Vec<_>>()
        );
        assert_eq!(roots[0].span.name, "jupiter.circe.home.v1.CirceHome/Submit");
        assert_eq!(roots[0].service(), "jupiter-circe-home");
        assert_eq!(roots[0].attribute("rpc.system").as_deref(), Some("grpc"));
        assert_eq!(roots[0].attribute("rpc.method").as_deref(), Some("Submit"));
        for span in &in_trace {
            if !span.span.parent_span_id.is_empty() {
                let parent = by_id.get(&span.parent_id());
                assert!(
                    parent.is_some_and(|p| p.trace_id() == trace),
                    "input {input}: span {:?} of {} has a parent that was never received",
                    span.span.name,
                    span.service()
                );
            }
        }

        // Every span of the trace is about the input and says so.
        for span in &in_trace {
            assert_eq!(
                span.attribute("jupiter.input_id").as_deref(),
                Some(input.as_str()),
                "span {:?} of {} does not name its input",
                span.span.name,
                span.service()
            );
        }

        // The input's span lasts its makespan.
        let input_span = named(&spans, "input")
            .find(|s| s.trace_id() == trace)
            .expect("the input's span");
        close(
            &format!("input {input}"),
            input_span.duration_ms(),
            result.makespan_ms,
        );

        for task in &app.tasks {
            let name = &task.name;
            let report = result
                .tasks
                .iter()
                .find(|r| &r.task == name)
                .expect("a report per task");
            // The task's span comes from its own worker...
            let span = in_trace
                .iter()
                .find(|s| s.span.name == format!("task {name}"))
                .unwrap_or_else(|| panic!("input {input}: no span of task {name}"));
            assert_eq!(span.service(), "jupiter-circe-worker");
            assert_eq!(span.resource.get("jupiter.task"), Some(name));
            assert_eq!(span.attribute("jupiter.task").as_deref(), Some(name.as_str()));
            assert_eq!(span.resource.get("jupiter.node"), Some(&report.node));
            // ...under the Push call that brought its input's last file,
            // served by that worker...
            let push_call = by_id[&span.parent_id()];
            assert_eq!(push_call.span.name, "jupiter.circe.worker.v1.CirceWorker/Push");
            assert_eq!(push_call.resource.get("jupiter.task"), Some(name));
            assert_eq!(push_call.span.kind, 2, "a server span");
            // ...which a parent task's worker (or circe-home, for an
            // ingress task) made, in another role.
            let push = by_id[&push_call.parent_id()];
            assert_eq!(push.span.name, format!("push {name}"));
            assert_eq!(push.span.kind, 3, "a client span");
            match task.parents.as_slice() {
                [] => assert_eq!(push.service(), "jupiter-circe-home"),
                parents => {
                    let from = push.resource.get("jupiter.task").cloned().unwrap_or_default();
                    assert!(
                        parents.contains(&from),
                        "{name} was pushed to by {from}, not a parent {parents:?}"
                    );
                }
            }
            assert!(
                push.attribute("jupiter.bytes").is_some() && push.attribute("jupiter.attempts").is_some()
            );

            // Its queue wait, run and transfer are the report's, to 5 ms.
            let child = |part: &str| {
                in_trace
                    .iter()
                    .find(|s| s.span.name == part && s.parent_id() == span.span_id())
                    .unwrap_or_else(|| panic!("input {input}: task {name} has no {part} span"))
            };
            close(
                &format!("{name} queue wait"),
                child("queue wait").duration_ms(),
                report.queue_wait_ms,
            );
            close(&format!("{name} run"), child("run").duration_ms(), report.run_ms);
            close(
                &format!("{name} transfer"),
                child("transfer").duration_ms(),
                report.transfer_ms,
            );
            assert_eq!(child("run").attribute("jupiter.exit").as_deref(), Some("ok"));
            let whole = report.queue_wait_ms + report.run_ms + report.transfer_ms;
            assert!(
                span.duration_ms() + 5.0 >= whole,
                "task {name}: its span ({:.1} ms) is shorter than its parts ({whole:.1} ms)",
                span.duration_ms()
            );
        }
    }

    // DRUPE's probe rounds are traces of their own: a round, a span per
    // link of the nodes it saw, and under each the droplet's ProbeLink call.
    let rounds: Vec<&Received> = named(&spans, "probe round")
        .filter(|r| r.attribute("jupiter.links").is_some())
        .collect();
    assert!(!rounds.is_empty(), "no whole probe round traced");
    for round in rounds {
        assert_eq!(round.service(), "jupiter-drupe-central");
        assert!(round.span.parent_span_id.is_empty());
        let nodes: usize = round
            .attribute("jupiter.nodes")
            .and_then(|n| n.parse().ok())
            .expect("jupiter.nodes");
        let probes: Vec<&Received> = spans
            .iter()
            .filter(|s| s.span.name.starts_with("probe node") && s.parent_id() == round.span_id())
            .collect();
        assert_eq!(
            probes.len(),
            nodes * (nodes - 1),
            "{nodes} nodes: every ordered pair probed"
        );
        for probe in probes {
            assert!(spans.iter().any(|s| s.parent_id() == probe.span_id()
                && s.span.name == "jupiter.drupe.droplet.v1.DrupeDroplet/ProbeLink"
                && s.service() == "jupiter-drupe-droplet"));
        }
    }
    // The mapping was asked of wave-home: its Schedule call is traced.
    assert!(spans
        .iter()
        .any(|s| s.span.name == "jupiter.wave.home.v1.WaveHome/Schedule"
            && s.service() == "jupiter-wave-home"
            && s.attribute("rpc.grpc.status_code").as_deref() == Some("0")));
    // Every role said who it is.
    let services: BTreeSet<&str> = spans.iter().map(Received::service).collect();
    for service in [
        "jupiter-circe-home",
        "jupiter-circe-worker",
        "jupiter-drupe-central",
        "jupiter-drupe-droplet",
    ] {
        assert!(
            services.contains(service),
            "no spans from {service}: {services:?}"
        );
    }
    assert!(spans.iter().all(|s| s
        .resource
        .get("jupiter.deployment")
        .is_some_and(|d| !d.is_empty())));
}

/// An endpoint that accepts and never answers costs spans, not time:
/// every input finishes, as fast as without tracing (within noise), and
/// the deployment still goes down promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_endpoint_that_never_answers_holds_nothing_up() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let app = App::load(&example("dummy_app")).expect("the legacy example loads");
    let plain = Sandbox::new();
    let inputs = vec![plain.inputs(20, "in", ".txt")];
    let without = run(&plain, &app, &random(7), None, &inputs).await;

    let hole = BlackHole::start().await;
    let sandbox = Sandbox::new();
    let inputs = vec![sandbox.inputs(20, "in", ".txt")];
    let started = std::time::Instant::now();
    let with = run(&sandbox, &app, &random(7), Some(hole.url.clone()), &inputs).await;
    let whole = started.elapsed();
    assert_eq!(with.results.len(), 20);
    eprintln!(
        "20 inputs: {:.2} s without tracing, {:.2} s exporting to an endpoint that never answers; \
         up, run and down took {:.1} s",
        without.wall.as_secs_f64(),
        with.wall.as_secs_f64(),
        whole.as_secs_f64()
    );
    // A blocking exporter would cost seconds per span; noise on a busy
    // 2-core machine is well within this.
    assert!(
        with.wall < without.wall * 2 + Duration::from_secs(1),
        "the inputs took {:?} with an unreachable endpoint, {:?} without",
        with.wall,
        without.wall
    );
}

/// The same with every role its own process (`run --processes`, the real
/// binary): spans from many processes still form one trace per input, and
/// a role binary's own `tracing` spans go out through tracing-opentelemetry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_processes_export_one_trace_per_input() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let receiver = Receiver::start().await;
    let sandbox = Sandbox::new();
    let cli = jupiter_tests::cli::Cli {
        bin: jupiter_tests::jupiterctl_bin().await,
        state: sandbox.path("state.json"),
    };
    let (work, output) = (sandbox.path("work"), sandbox.path("output"));
    let app_dir = example("dummy_app");
    let run = cli
        .command(&[
            "run",
            &app_dir.display().to_string(),
            "--processes",
            "--scheduler",
            "random",
            "--workdir",
            &work.display().to_string(),
            "--output",
            &output.display().to_string(),
            "--otlp-endpoint",
            &receiver.url,
        ])
        .output()
        .await
        .expect("jupiterctl run");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("3/3 inputs ok"), "{stdout}");
    let app = App::load(&app_dir).expect("app");
    let inputs: Vec<String> = std::fs::read_dir(app_dir.join("sample_input"))
        .expect("samples")
        .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
        .collect();
    // Every process exported before `run` returned; the receiver may still
    // be storing the last requests.
    let spans = receiver
        .wait_for(Duration::from_secs(10), |spans| {
            inputs.iter().all(|i| {
                named(spans, "input").any(|s| s.attribute("jupiter.input_id").as_deref() == Some(i))
                    && app.tasks.iter().all(|t| {
                        named(spans, &format!("task {}", t.name))
                            .any(|s| s.attribute("jupiter.input_id").as_deref() == Some(i))
                    })
            })
        })
        .await;
    let by_id: BTreeMap<String, &Received> = spans.iter().map(|s| (s.span_id(), s)).collect();
    for input in &inputs {
        let traces: BTreeSet<String> = of_input(&spans, input).map(Received::trace_id).collect();
        assert_eq!(traces.len(), 1, "input {input} is in traces {traces:?}");
        let trace = traces.into_iter().next().expect("one trace");
        let in_trace: Vec<&Received> = spans.iter().filter(|s| s.trace_id() == trace).collect();
        for task in &app.tasks {
            assert!(
                in_trace
                    .iter()
                    .any(|s| s.span.name == format!("task {}", task.name)
                        && s.resource.get("jupiter.task") == Some(&task.name)),
                "input {input}: no span from {}'s worker",
                task.name
            );
        }
        for span in &in_trace {
            assert!(
                span.span.parent_span_id.is_empty() || by_id.contains_key(&span.parent_id()),
                "input {input}: {:?} of {} has a parent never received",
                span.span.name,
                span.service()
            );
        }
        assert_eq!(
            in_trace
                .iter()
                .filter(|s| s.span.parent_span_id.is_empty())
                .count(),
            1
        );
    }
    // Each worker process's `tracing` span, through tracing-opentelemetry.
    let recovered: BTreeSet<String> = named(&spans, "recover queue")
        .filter(|s| s.service() == "jupiter-circe-worker")
        .filter_map(|s| s.resource.get("jupiter.task").cloned())
        .collect();
    assert_eq!(recovered.len(), app.tasks.len(), "{recovered:?}");
}
