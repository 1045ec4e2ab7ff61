//! Every role of a deployment, seen through the real grpcurl (v1.8.6) as a
//! user would poke at it: `list` gives exactly the role's own service plus
//! health and reflection, `describe` shows it, health says SERVING for it
//! and NotFound for a service the role does not serve; and the push that
//! announced four billion files (once acknowledged) is refused by name.

use jupiter_common::app::App;
use jupiter_tests::grpcurl::{self, listed, served, text};
use jupiter_tests::{example, Sandbox};
use std::process::Output;

/// `grpcurl -plaintext ARGS…`, its output.
async fn call(args: &[&str], stdin: Option<&str>) -> Output {
    let plain: Vec<&str> = std::iter::once("-plaintext")
        .chain(args.iter().copied())
        .collect();
    grpcurl::call(&plain, stdin).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_describes_and_health_checks_every_role() {
    let sandbox = Sandbox::new();
    let app = App::load(&example("fanjoin")).expect("example loads");
    let deployment = sandbox.deploy_local(&app, 3, 2).await;
    let e = deployment.summary.endpoints();
    let roles = jupiter_tests::role_services(&e);
    for (url, service) in &roles {
        let address = url.trim_start_matches("http://");
        // grpcurl 1.8.6 asks reflection v1alpha.
        let out = call(&[address, "list"], None).await;
        assert!(out.status.success(), "{address} list: {}", text(&out));
        assert_eq!(listed(&out), served(service), "{address}: exactly its services");

        let out = call(&[address, "describe", service], None).await;
        let name = service.rsplit('.').next().unwrap_or(service);
        assert!(
            out.status.success() && text(&out).contains(&format!("service {name} {{")),
            "{address} describe {service}: {}",
            text(&out)
        );

        let request = format!("{{\"service\":\"{service}\"}}");
        let out = call(&["-d", &request, address, "grpc.health.v1.Health/Check"], None).await;
        assert!(
            out.status.success() && text(&out).contains("SERVING"),
            "{address} health of {service}: {}",
            text(&out)
        );
        let stranger = jupiter_tests::another_service(service);
        let request = format!("{{\"service\":\"{stranger}\"}}");
        let out = call(&["-d", &request, address, "grpc.health.v1.Health/Check"], None).await;
        assert!(
            !out.status.success() && text(&out).contains("NotFound"),
            "{address} health of {stranger}: {}",
            text(&out)
        );
    }

    // The push seen in the field: a header announcing four billion files.
    let join = e.workers["join"]
        .address
        .trim_start_matches("http://")
        .to_string();
    let header = r#"{"header":{"inputId":"x","fromTask":"left","fileName":"x_left.txt","fileCount":4000000000,"size":3}}"#;
    let data = r#"{"data":"YWJj"}"#;
    let out = call(
        &["-d", "@", &join, "jupiter.circe.worker.v1.CirceWorker/Push"],
        Some(&format!("{header}\n{data}\n")),
    )
    .await;
    assert!(
        !out.status.success()
            && text(&out).contains("InvalidArgument")
            && text(&out).contains("--max-files-per-input"),
        "four billion files refused: {}",
        text(&out)
    );
    deployment.down().await.expect("down");
}
