//! Port-forwarding through the API server (the `pods/portforward`
//! subresource, WebSocket `v4.channel.k8s.io`), so that jupiterctl reaches
//! drupe-central, wave-home, circe-home, the nodes' agents and the workers
//! inside the cluster with no `kubectl port-forward`.
//!
//! Each forwarded role gets a listener on 127.0.0.1 for as long as the
//! [`Forwards`] live. Every connection to it picks a ready pod of the role
//! at that moment (a pod deleted and started again is found again) and
//! opens one stream to it: a gRPC channel is one connection, so one
//! WebSocket carries all its calls.

use super::pods;
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The pods one forward reaches: those of a role, on a node or running a
/// task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub namespace: String,
    /// The pods' labels (`kubectl -l`).
    pub labels: String,
    /// A field selector (`spec.nodeName=NODE` for a node's agents).
    pub fields: Option<String>,
    /// The pod's port.
    pub port: u16,
    /// How messages name it (`circe-worker task3`).
    pub what: String,
}

/// The forwards of one deployment; dropping it closes every listener and
/// the streams through them.
#[derive(Default)]
pub struct Forwards {
    listeners: Vec<JoinHandle<()>>,
}

impl Drop for Forwards {
    fn drop(&mut self) {
        for listener in &self.listeners {
            listener.abort();
        }
    }
}

impl Forwards {
    /// Starts forwarding a local port to `target`; returns the URL
    /// jupiterctl calls it at (`http://127.0.0.1:PORT`). Nothing is asked of
    /// the API server until a connection comes.
    pub async fn open(&mut self, client: &Client, target: Target) -> std::io::Result<String> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let client = client.clone();
        self.listeners.push(tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        tokio::spawn(forward(client.clone(), target.clone(), stream));
                    }
                    // Out of file descriptors, say: a pause, not a spin.
                    Err(e) => {
                        tracing::warn!(role = %target.what, error = %e, "port-forward: accepting");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        }));
        Ok(url)
    }
}

/// Carries one local connection to a ready pod of `target` and back; a
/// connection no pod can take is closed, with the reason in the log.
async fn forward(client: Client, target: Target, mut local: TcpStream) {
    let api = Api::<Pod>::namespaced(client, &target.namespace);
    let pod = match pods::pick(&api, &target.labels, target.fields.as_deref()).await {
        Ok(Some(pod)) => pod,
        Ok(None) => {
            tracing::warn!(role = %target.what, "port-forward: no running pod");
            return;
        }
        Err(e) => {
            tracing::warn!(role = %target.what, error = %e, "port-forward: listing the pods");
            return;
        }
    };
    let mut forwarder = match api.portforward(&pod, &[target.port]).await {
        Ok(forwarder) => forwarder,
        Err(e) => {
            tracing::warn!(role = %target.what, pod, error = %e, "port-forward refused");
            return;
        }
    };
    let (Some(mut remote), Some(error)) = (
        forwarder.take_stream(target.port),
        forwarder.take_error(target.port),
    ) else {
        return;
    };
    tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut local, &mut remote) => {
            if let Err(e) = copied {
                tracing::debug!(role = %target.what, pod, error = %e, "port-forward stream ended");
            }
        }
        Some(message) = error => {
            tracing::warn!(role = %target.what, pod, error = %message, "port-forward: the pod's port failed");
        }
    }
    drop(remote);
    if let Err(e) = forwarder.join().await {
        tracing::debug!(role = %target.what, pod, error = %e, "port-forward closed");
    }
}
