//! The execution profile of a Docker deployment, taken where its tasks run:
//! `jupiterctl exec-profile /app --json` in a container of the jupiterctl
//! image with the CPU and memory limits of the fastest node (the host's
//! speed says nothing of a node limited to half a CPU). The container
//! carries the deployment's label, so `down` removes one left behind.

use super::engine::Engine;
use super::spec::DEPLOYMENT_LABEL;
use super::DockerConfig;
use crate::exec_profile::{ExecProfile, ProfileError, ProfileOptions};
use crate::node_list::NodeSpec;
use jupiter_common::app::App;
use std::time::Duration;

/// Where the app folder appears in the profiling container.
const APP_MOUNT: &str = "/app";
/// Where a sample input from outside the app folder appears.
const SAMPLE_MOUNT: &str = "/sample";
/// Time beyond the profile's own timeout for the container to start, and
/// for the speed benchmark.
const GRACE: Duration = Duration::from_secs(30);

/// The node the profile is taken like: the most CPUs, then the most memory.
pub fn fastest(nodes: &[NodeSpec]) -> Option<&NodeSpec> {
    nodes.iter().max_by(|a, b| {
        a.cpus
            .total_cmp(&b.cpus)
            .then(a.memory_bytes.cmp(&b.memory_bytes))
    })
}

/// The `docker` arguments that profile `app` in a container named `name`
/// of deployment `id`, limited like `node`.
pub fn run_args(
    id: &str,
    name: &str,
    image: &str,
    node: &NodeSpec,
    app: &App,
    options: &ProfileOptions,
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "run".into(),
        "--rm".into(),
        "--name".into(),
        name.into(),
        "--label".into(),
        format!("{DEPLOYMENT_LABEL}={id}"),
        "--cpus".into(),
        node.cpus.to_string(),
        "--memory".into(),
        node.memory_bytes.to_string(),
        "-v".into(),
        format!("{}:{APP_MOUNT}:ro", app.dir.display()),
    ];
    let mut sample_arg = None;
    if let Some(sample) = options.sample_of(app) {
        match sample.strip_prefix(&app.dir) {
            Ok(inside) => sample_arg = Some(format!("{APP_MOUNT}/{}", inside.display())),
            Err(_) => {
                let file = sample
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                args.push("-v".into());
                args.push(format!("{}:{SAMPLE_MOUNT}/{file}:ro", sample.display()));
                sample_arg = Some(format!("{SAMPLE_MOUNT}/{file}"));
            }
        }
    }
    args.extend([
        image.to_string(),
        "exec-profile".into(),
        APP_MOUNT.into(),
        "--json".into(),
        "--profile-timeout".into(),
        options.timeout.as_secs_f64().to_string(),
        // The image's own Python, whatever the host calls its one.
        "--python".into(),
        "python3".into(),
    ]);
    if let Some(sample) = sample_arg {
        args.push("--sample".into());
        args.push(sample);
    }
    args
}

/// Profiles `app` in a container like the fastest node of `config`.
pub async fn in_container(
    engine: &Engine,
    id: &str,
    config: &DockerConfig,
    app: &App,
    options: &ProfileOptions,
) -> Result<ExecProfile, ProfileError> {
    let elsewhere = |detail: String| ProfileError::Elsewhere {
        place: "a Docker container".into(),
        detail,
    };
    let node = fastest(&config.nodes).ok_or_else(|| elsewhere("the deployment has no node".into()))?;
    let image = format!("{}/jupiterctl:{}", config.images.prefix, config.images.tag);
    if !engine.has_image(&image).await {
        return Err(elsewhere(format!(
            "image {image} is not present; build it with `docker/build-images.sh {}`",
            config.images.tag
        )));
    }
    let name = format!("{id}-exec-profile");
    let args = run_args(id, &name, &image, node, app, options);
    let place = format!(
        "a container like node {} ({} CPU, {} MiB)",
        node.name,
        node.cpus,
        node.memory_bytes >> 20
    );
    let json = match tokio::time::timeout(options.timeout + GRACE, engine.run(&args)).await {
        Ok(result) => result.map_err(|e| elsewhere(e.to_string()))?,
        Err(_) => {
            // `docker run` stopped waiting is not the container stopped.
            let _ = engine.run(&["rm", "--force", name.as_str()]).await;
            return Err(elsewhere(format!(
                "no answer within {:.0} s",
                (options.timeout + GRACE).as_secs_f64()
            )));
        }
    };
    let mut profile: ExecProfile = serde_json::from_str(&json).map_err(|e| {
        elsewhere(format!(
            "`jupiterctl exec-profile --json` printed no profile ({e}): {json}"
        ))
    })?;
    profile.place = place;
    Ok(profile)
}
