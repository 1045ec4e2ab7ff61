//! How every role serves: its own gRPC services plus `grpc.health.v1` and
//! server reflection (v1 and v1alpha, so any `grpcurl` works), on a listener
//! the caller bound, until the shutdown future resolves.

use crate::connection::Severable;
use crate::proto::FILE_DESCRIPTOR_SET;
use crate::telemetry::propagation::{ServerTraceLayer, TracedChannel};
use crate::telemetry::Telemetry;
use crate::tls;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::service::RoutesBuilder;
use tonic::transport::{Endpoint, Server};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::ServingStatus as ReportedStatus;

/// HTTP/2 windows large enough that a single stream can fill a fast link.
const STREAM_WINDOW: u32 = 32 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 64 * 1024 * 1024;
/// How often a client pings each connection, and how long it waits for
/// the answer before it gives the connection up.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stopping server waits for open calls to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// HTTP/2 frames big enough that a 1 MiB chunk travels as one frame (not 64),
/// so the receiver gathers each message without growing its buffer.
const MAX_FRAME: u32 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("building the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("Jupiter's own descriptor set: {0}")]
    Descriptors(#[from] prost::DecodeError),
    #[error("serving gRPC: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// The channel every role's clients use: each call carries the caller's
/// trace context.
pub type Channel = TracedChannel;

/// Serves `routes` (the role's own services, named in `services` so health
/// can report each) with health and reflection added; each call of the
/// role's own services gets a span when `telemetry` traces. Where this
/// process has a TLS identity for the listener's address (see [`tls`]),
/// only mutual TLS is spoken.
pub async fn serve(
    listener: TcpListener,
    telemetry: &Telemetry,
    mut routes: RoutesBuilder,
    services: &[&str],
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let address = listener.local_addr()?;
    let (reporter, health) = tonic_health::server::health_reporter();
    for name in services {
        reporter.set_service_status(*name, ReportedStatus::Serving).await;
    }
    let reflection_v1 = reflection(services)?
        .with_service_name(REFLECTION_V1)
        .build_v1()?;
    let reflection_v1alpha = reflection(services)?
        .with_service_name(REFLECTION_V1ALPHA)
        .build_v1alpha()?;
    routes
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    // Every connection ends with this function, however it ends (returning,
    // or dropped with its task as a crash would): see `connection`.
    let connections = CancellationToken::new();
    let _end_connections = connections.clone().drop_guard();
    let incoming = TcpListenerStream::new(listener).map(move |conn| {
        conn.map(|stream| {
            // Small control messages must not wait for Nagle.
            let _ = stream.set_nodelay(true);
            Severable::new(stream, &connections)
        })
    });
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut builder = Server::builder();
    if let Some(identity) = tls::for_listener(address) {
        builder = builder.tls_config(identity.server())?;
    }
    let server = builder
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME)
        .layer(ServerTraceLayer::new(telemetry.tracer().cloned()))
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(incoming, async move {
            shutdown.await;
            let _ = stopping.send(());
        });
    // Graceful shutdown waits for open calls, and a watch stream never
    // ends by itself: after a grace period the remaining calls are cut.
    tokio::select! {
        result = server => result?,
        _ = async {
            if stopped.await.is_ok() {
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => tracing::debug!("calls still open after the shutdown grace period; closing them"),
    }
    // The role's last spans go out before it is gone.
    telemetry.flush().await;
    Ok(())
}

/// The reflection names of health and of the two reflection services.
pub const HEALTH: &str = "grpc.health.v1.Health";
pub const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
pub const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// Reflection of exactly `services` and health: their proto files (and
/// what those import), and only their names listed. A client listing a
/// role's services sees what it serves, not every Jupiter service.
fn reflection(services: &[&str]) -> Result<tonic_reflection::server::Builder<'static>, ServeError> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_file_descriptor_set(served_files(services)?)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(HEALTH);
    for name in services {
        builder = builder.with_service_name(*name);
    }
    Ok(builder)
}

/// The files of Jupiter's descriptor set that define one of `services`,
/// with everything they import.
fn served_files(services: &[&str]) -> Result<prost_types::FileDescriptorSet, ServeError> {
    use prost::Message;
    let all = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET)?;
    let defines = |file: &prost_types::FileDescriptorProto| {
        file.service
            .iter()
            .any(|s| services.contains(&format!("{}.{}", file.package(), s.name()).as_str()))
    };
    let mut keep: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let mut next: Vec<String> = all
        .file
        .iter()
        .filter(|f| defines(f))
        .map(|f| f.name().to_string())
        .collect();
    while let Some(name) = next.pop() {
        if keep.insert(name.clone()) {
            if let Some(file) = all.file.iter().find(|f| f.name() == name) {
                next.extend(file.dependency.iter().cloned());
            }
        }
    }
    Ok(prost_types::FileDescriptorSet {
        file: all.file.into_iter().filter(|f| keep.contains(f.name())).collect(),
    })
}

/// A lazily connecting channel to `address` (`http://host:port`), tuned like
/// the server, so callers can be built before their peer is up; its calls
/// carry the caller's trace context. Mutual TLS where this process has an
/// identity for the address (see [`tls`]).
pub fn channel(address: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(TracedChannel::new(tuned(endpoint(address)?)))
}

/// [`channel`] without trace context or Jupiter's TLS: what the span
/// exporter uses to reach a collector, which is no member of the deployment.
pub fn plain_channel(address: &str) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    Ok(tuned(Endpoint::from_shared(address.to_string())?))
}

fn tuned(endpoint: Endpoint) -> tonic::transport::Channel {
    endpoint
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        // A partition leaves a connection open but dead: without pings its
        // calls would hang until TCP gives up (minutes). With them a dead
        // connection fails its calls within ~10 s, and callers retry on a
        // new one (with backoff) until the link heals.
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME)
        .connect_lazy()
}

/// The endpoint at `address`: over mutual TLS where this process has an
/// identity for it, its `http://` read as `https://`.
fn endpoint(address: &str) -> Result<Endpoint, tonic::transport::Error> {
    match tls::for_server(address) {
        None => Endpoint::from_shared(address.to_string()),
        Some(identity) => {
            let secure = match address.strip_prefix("http://") {
                Some(rest) => format!("https://{rest}"),
                None => address.to_string(),
            };
            Endpoint::from_shared(secure)?.tls_config(identity.client())
        }
    }
}

/// `http://` URL of a bound listener.
pub fn url_of(listener: &TcpListener) -> std::io::Result<String> {
    Ok(format!("http://{}", listener.local_addr()?))
}

#[derive(Debug, thiserror::Error)]
#[error("{what} at {address} is not healthy after {waited:?}: {last}")]
pub struct NotHealthy {
    pub what: String,
    pub address: String,
    pub waited: Duration,
    /// Why the last check failed, as shown to the user (status tables
    /// print it alone).
    pub last: String,
}

/// Polls `grpc.health.v1` at `address` until the overall status is SERVING.
/// This is how Jupiter waits for a role: it asks, it never sleeps blindly.
pub async fn wait_healthy(what: &str, address: &str, timeout: Duration) -> Result<(), NotHealthy> {
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(2);
    let last = loop {
        let last = match check_health(address).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if started.elapsed() >= timeout {
            break last;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(200));
    };
    Err(NotHealthy {
        what: what.to_string(),
        address: address.to_string(),
        waited: started.elapsed(),
        last: last.to_string(),
    })
}

/// Why one health check failed.
#[derive(Debug, thiserror::Error)]
enum Unhealthy {
    #[error("{0}")]
    Address(tonic::transport::Error),
    #[error("connect: {0}")]
    Connect(tonic::transport::Error),
    #[error("{}", .0.message())]
    Call(tonic::Status),
    #[error("status {0:?}")]
    Status(ServingStatus),
}

async fn check_health(address: &str) -> Result<(), Unhealthy> {
    let channel = endpoint(address)
        .map_err(Unhealthy::Address)?
        .connect_timeout(Duration::from_secs(1))
        // A socket that accepts and never answers (a stopped process whose
        // listening socket is still held, a frozen one) is not healthy.
        .timeout(Duration::from_secs(2))
        .connect()
        .await
        .map_err(Unhealthy::Connect)?;
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(Unhealthy::Call)?;
    match reply.into_inner().status() {
        ServingStatus::Serving => Ok(()),
        other => Err(Unhealthy::Status(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    async fn serving(listener: TcpListener, service: &'static str) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let _ = serve(
                listener,
                &Telemetry::off(crate::role::Role::CirceHome),
                RoutesBuilder::default(),
                &[service],
                std::future::pending(),
            )
            .await;
        })
    }

    /// A call in flight when its server is killed ends with it (as on a
    /// real crash), and a client that keeps its channel reaches the server
    /// that takes the port over, not the dead one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_server_leaves_no_connection_answering() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let first = serving(listener, "first.A").await;
        let mut client = HealthClient::new(channel(&format!("http://{addr}")).expect("channel"));
        let ask = |client: &mut HealthClient<Channel>| {
            let mut client = client.clone();
            async move {
                client
                    .check(HealthCheckRequest {
                        service: "first.A".into(),
                    })
                    .await
            }
        };
        assert_eq!(
            ask(&mut client)
                .await
                .expect("the first server answers")
                .into_inner()
                .status(),
            ServingStatus::Serving
        );
        let mut watch = client
            .watch(HealthCheckRequest {
                service: "first.A".into(),
            })
            .await
            .expect("watch")
            .into_inner();
        assert!(watch.message().await.expect("first status").is_some());
        first.abort();
        let _ = first.await;
        // The open stream ends at once: nothing of the dead server lingers.
        let ended = tokio::time::timeout(Duration::from_secs(2), watch.message()).await;
        assert!(
            matches!(ended, Ok(Err(_)) | Ok(Ok(None))),
            "a call still open on the killed server: {ended:?}"
        );

        let mut listener = None;
        for _ in 0..100 {
            match TcpListener::bind(addr).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        let second = serving(listener.expect("the port is free again"), "second.B").await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match ask(&mut client).await {
                // The new server does not know the old one's service.
                Err(status) if status.code() == Code::NotFound => break,
                // Cut, or still the dead server's connection answering.
                Ok(_) | Err(_) => {}
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the client still talks to the killed server"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        second.abort();
    }
}
