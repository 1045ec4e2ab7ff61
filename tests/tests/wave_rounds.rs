//! Distributed WAVE with real agents: a round completes when an agent
//! starts late, and fails naming the agent that never starts.

use jupiter_common::proto::wave::home::v1::wave_home_client::WaveHomeClient;
use jupiter_common::proto::wave::home::v1::{ScheduleRequest, TaskNode};
use jupiter_common::role::Role;
use jupiter_common::serve::{channel, url_of, wait_healthy};
use jupiter_common::telemetry::Settings;
use std::collections::HashMap;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// t0 fans out to t1..t8, which all feed t9.
fn tasks() -> Vec<TaskNode> {
    let mut tasks = vec![TaskNode {
        name: "t0".into(),
        children: (1..=8).map(|i| format!("t{i}")).collect(),
        ..Default::default()
    }];
    for i in 1..=8 {
        tasks.push(TaskNode {
            name: format!("t{i}"),
            children: vec!["t9".into()],
            ..Default::default()
        });
    }
    tasks.push(TaskNode {
        name: "t9".into(),
        ..Default::default()
    });
    tasks
}

struct Setup {
    stop: CancellationToken,
    home: String,
    workers: HashMap<String, String>,
    /// node2's listener, bound but not served yet.
    late: Option<TcpListener>,
}

async fn setup() -> Setup {
    let stop = CancellationToken::new();
    let home = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let home_url = url_of(&home).expect("url");
    // WAVE-random needs no DRUPE; the URL is never called.
    let config = wave_home::Config {
        telemetry: jupiter_common::telemetry::Settings::off(jupiter_common::role::Role::WaveHome),
        central: "http://127.0.0.1:1".into(),
        advertise: None,
    };
    tokio::spawn(wave_home::serve(config, home, stop.clone().cancelled_owned()));
    wait_healthy("wave-home", &home_url, Duration::from_secs(10))
        .await
        .expect("healthy");
    let mut workers = HashMap::new();
    let mut late = None;
    for i in 0..3 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let node = format!("node{i}");
        workers.insert(node.clone(), url_of(&listener).expect("url"));
        if i == 2 {
            late = Some(listener);
        } else {
            let stop = stop.clone().cancelled_owned();
            tokio::spawn(wave_worker::serve(
                wave_worker::Config {
                    node,
                    telemetry: Settings::off(Role::WaveWorker),
                },
                listener,
                stop,
            ));
        }
    }
    Setup {
        stop,
        home: home_url,
        workers,
        late,
    }
}

fn request(workers: &HashMap<String, String>, timeout_secs: f64) -> ScheduleRequest {
    ScheduleRequest {
        algorithm: "wave-random".into(),
        tasks: tasks(),
        seed: 3,
        workers: workers.clone(),
        timeout_secs,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_agent_is_waited_for() {
    let mut s = setup().await;
    let listener = s.late.take().expect("node2's listener");
    let stop = s.stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let config = wave_worker::Config {
            node: "node2".into(),
            telemetry: Settings::off(Role::WaveWorker),
        };
        wave_worker::serve(config, listener, stop.cancelled_owned()).await
    });
    let mapping = WaveHomeClient::new(channel(&s.home).expect("channel"))
        .schedule(request(&s.workers, 20.0))
        .await
        .expect("the round completes")
        .into_inner();
    assert_eq!(mapping.assignments.len(), 10, "{mapping:?}");
    assert!(mapping.assignments.values().all(|n| s.workers.contains_key(n)));
    assert!(
        mapping.assignments.values().any(|n| n == "node2"),
        "the late node got work: {mapping:?}"
    );
    s.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_agent_fails_the_round_by_name() {
    let mut s = setup().await;
    // node2's port is closed: its agent never starts.
    drop(s.late.take());
    let started = std::time::Instant::now();
    let err = WaveHomeClient::new(channel(&s.home).expect("channel"))
        .schedule(request(&s.workers, 2.0))
        .await
        .expect_err("the round cannot complete");
    let url = &s.workers["node2"];
    assert!(
        err.message().contains("node2") && err.message().contains(url.as_str()),
        "names the agent: {}",
        err.message()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "fails at its deadline, not later"
    );
    s.stop.cancel();
}
