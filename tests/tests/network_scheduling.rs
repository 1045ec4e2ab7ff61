//! HEFT in a live deployment: it waits for DRUPE's complete profile, uses
//! the declared execution profile, and a mapping with a prediction comes out.

use jupiter_common::app::App;
use jupiter_tests::{scheduled, Sandbox};
use jupiterctl::deployment::{Deployment, Scheduler};
use std::os::unix::fs::PermissionsExt;

fn app(dir: &std::path::Path, output_bytes: u64) -> App {
    std::fs::create_dir_all(dir).expect("app dir");
    let script = dir.join("t.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ncat \"$@\" > \"$JUPITER_OUTPUT_DIR/$JUPITER_TASK\"\n",
    )
    .expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut yaml = String::from("tasks:\n");
    for (name, child) in [("a", Some("b")), ("b", Some("c")), ("c", None)] {
        yaml += &format!(
            "  - name: {name}\n    command: ./t.sh\n    cost: 0.01\n    output_bytes: {output_bytes}\n"
        );
        if let Some(child) = child {
            yaml += &format!("    children: [{child}]\n");
        }
    }
    std::fs::write(dir.join("app.yaml"), yaml).expect("app.yaml");
    App::load(dir).expect("app loads")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn heft_keeps_a_chain_with_huge_transfers_on_one_node() {
    let sandbox = Sandbox::new();
    // 10 GB per edge: any split costs seconds, every task 10 ms.
    let app = app(&sandbox.path("app"), 10_000_000_000);
    let deployment = Deployment::up(sandbox.local(&app, 3), &app, &scheduled(Scheduler::Heft, 1))
        .await
        .expect("deploys");
    let nodes: std::collections::BTreeSet<&String> = deployment.summary.mapping.values().collect();
    assert_eq!(
        nodes.len(),
        1,
        "one node for the whole chain: {:?}",
        deployment.summary.mapping
    );
    assert_eq!(deployment.summary.scheduler, "heft");
    let predicted = deployment.summary.predicted_makespan_secs;
    assert!(
        predicted > 0.0 && predicted < 1.0,
        "three 10 ms tasks, no transfer: {predicted}"
    );
    deployment.down().await.expect("down");
}
