//! `jupiterctl status`: asks every role of a running deployment how it is.

use crate::state::DeploymentState;
use jupiter_common::proto::circe::home::v1::circe_home_client::CirceHomeClient;
use jupiter_common::proto::circe::home::v1::HomeStatusRequest;
use jupiter_common::proto::circe::worker::v1::circe_worker_client::CirceWorkerClient;
use jupiter_common::proto::circe::worker::v1::StatusRequest;
use jupiter_common::proto::drupe::central::v1::drupe_central_client::DrupeCentralClient;
use jupiter_common::proto::drupe::central::v1::ProfileRequest;
use jupiter_common::serve;
use std::fmt::Write;

pub async fn render(state: &DeploymentState) -> String {
    let e = &state.endpoints;
    let mut out = format!(
        "app {} (backend {}, {})\n\nROLES\n",
        state.app.display(),
        state.backend,
        state.owner()
    );
    let mut roles = vec![
        ("drupe-central".to_string(), e.drupe_central.clone()),
        ("wave-home".to_string(), e.wave_home.clone()),
        ("circe-home".to_string(), e.circe_home.clone()),
    ];
    for n in &e.nodes {
        roles.push((format!("drupe-droplet {}", n.name), n.drupe_droplet.clone()));
        roles.push((format!("wave-worker {}", n.name), n.wave_worker.clone()));
    }
    for (task, w) in &e.workers {
        roles.push((format!("circe-worker {task}"), w.address.clone()));
    }
    for (what, url) in &roles {
        let health = match serve::wait_healthy(what, url, std::time::Duration::ZERO).await {
            Ok(()) => "SERVING".to_string(),
            Err(err) => format!("DOWN ({})", err.last),
        };
        let _ = writeln!(out, "  {what:<28} {url:<24} {health}");
    }

    out.push_str("\nNODES\n");
    match node_table(&e.drupe_central).await {
        Ok(table) => out.push_str(&table),
        Err(err) => {
            let _ = writeln!(out, "  drupe-central: {err}");
        }
    }

    if state.predicted_makespan_secs > 0.0 {
        let _ = writeln!(
            out,
            "\nMAPPING ({}, predicted makespan of one input {:.1} ms)",
            state.algorithm,
            state.predicted_makespan_secs * 1000.0
        );
    } else {
        let _ = writeln!(out, "\nMAPPING ({})", state.algorithm);
    }
    out.push_str("  TASK                 NODE      WAITING  RUNNING  SENDING     DONE   FAILED\n");
    for (task, w) in &e.workers {
        let line = match worker_status(&w.address).await {
            Ok(s) => format!(
                "{:>7}  {:>7}  {:>7}  {:>7}  {:>7}",
                s.waiting, s.running, s.sending, s.done, s.failed
            ),
            Err(err) => format!("unreachable: {err}"),
        };
        let _ = writeln!(out, "  {task:<20} {:<8}  {line}", w.node);
    }

    out.push_str("\nINPUTS\n");
    match home_status(&e.circe_home).await {
        Ok(s) => {
            let _ = writeln!(
                out,
                "  submitted {}  done {}  failed {}  in flight {}",
                s.submitted, s.done, s.failed, s.in_flight
            );
        }
        Err(err) => {
            let _ = writeln!(out, "  circe-home: {err}");
        }
    }
    let _ = writeln!(out, "  outputs in {}", state.output.display());
    out
}

async fn node_table(central: &str) -> Result<String, String> {
    let profile = DrupeCentralClient::new(serve::channel(central).map_err(|e| e.to_string())?)
        .get_resource_profile(ProfileRequest {})
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    let mut out = "  NODE      CPUS   LOAD   MEM FREE / TOTAL\n".to_string();
    for n in profile.nodes {
        let _ = writeln!(
            out,
            "  {:<8}  {:>4}  {:>5.2}   {:.1} / {:.1} GiB",
            n.node,
            n.cpu_count,
            n.cpu_load,
            n.memory_free_bytes as f64 / (1u64 << 30) as f64,
            n.memory_total_bytes as f64 / (1u64 << 30) as f64
        );
    }
    Ok(out)
}

async fn worker_status(
    address: &str,
) -> Result<jupiter_common::proto::circe::worker::v1::WorkerStatus, String> {
    Ok(
        CirceWorkerClient::new(serve::channel(address).map_err(|e| e.to_string())?)
            .status(StatusRequest {})
            .await
            .map_err(|s| s.message().to_string())?
            .into_inner(),
    )
}

async fn home_status(address: &str) -> Result<jupiter_common::proto::circe::home::v1::HomeStatus, String> {
    Ok(
        CirceHomeClient::new(serve::channel(address).map_err(|e| e.to_string())?)
            .status(HomeStatusRequest {})
            .await
            .map_err(|s| s.message().to_string())?
            .into_inner(),
    )
}
