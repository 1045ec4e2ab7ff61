//! Every role, deployed, answers a real gRPC client: server reflection lists
//! its services and `grpc.health.v1` says SERVING.

use jupiter_common::app::App;
use jupiter_tests::{example, Sandbox};
use tokio_stream::StreamExt;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

async fn channel(address: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(address.to_string())
        .expect("address")
        .connect()
        .await
        .expect("connect")
}

async fn list_services(address: &str) -> Vec<String> {
    let mut client = ServerReflectionClient::new(channel(address).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let reply = replies.next().await.expect("one reply").expect("ok reply");
    match reply.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection reply {other:?}"),
    }
}

async fn health(address: &str, service: &str) -> ServingStatus {
    HealthClient::new(channel(address).await)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status()
}

/// The code a health check of `service` ends with (`Ok` if it answered).
async fn health_code(address: &str, service: &str) -> tonic::Code {
    match HealthClient::new(channel(address).await)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await
    {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_lists_its_services_and_is_serving() {
    let sandbox = Sandbox::new();
    let app = App::load(&example("fanjoin")).expect("example loads");
    let deployment = sandbox.deploy_local(&app, 3, 2).await;
    let e = &deployment.summary.endpoints();
    let roles = jupiter_tests::role_services(e);
    assert_eq!(roles.len(), 3 + 2 * 3 + 4);
    for (address, service) in roles {
        // Exactly the role's own service, health and reflection: not every
        // Jupiter service.
        let mut services = list_services(&address).await;
        services.sort();
        let mut want = vec![
            service.to_string(),
            "grpc.health.v1.Health".to_string(),
            "grpc.reflection.v1.ServerReflection".to_string(),
        ];
        want.sort();
        assert_eq!(services, want, "{address} lists exactly its services");
        let stranger = jupiter_tests::another_service(service);
        assert_eq!(
            health_code(&address, stranger).await,
            tonic::Code::NotFound,
            "{address}: health of a service it does not serve"
        );
        assert_eq!(
            health(&address, "").await,
            ServingStatus::Serving,
            "{address} overall"
        );
        assert_eq!(
            health(&address, service).await,
            ServingStatus::Serving,
            "{address} {service}"
        );
    }
    deployment.down().await.expect("down");
}
