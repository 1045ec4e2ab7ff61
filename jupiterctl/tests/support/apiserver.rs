//! A stand-in for the Kubernetes API server behind a real `kube::Client`,
//! either in-process (a tower service) or on a real socket ([`ApiServer::serve`]).
//! It records every request (method, path, query, body) and answers as the
//! API server would. So what a test asserts about the requests is exactly
//! the HTTP jupiterctl would send.
//!
//! On a socket it also plays the kubelet's part in port-forwarding: the
//! `pods/portforward` subresource upgrades to a WebSocket
//! (`v4.channel.k8s.io`: one byte of channel, then data; each port's data
//! and error channels first carry the port number) and carries the bytes
//! to a real server the test started as that pod ([`Pod`]).

// Each test binary uses part of it.
#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{handshake::derive_accept_key, protocol::Role, Message};
use tokio_tungstenite::WebSocketStream;

/// The cluster's usable nodes.
pub const NODES: [&str; 3] = ["kind-a", "kind-b", "kind-c"];

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub content_type: Option<String>,
    pub body: Option<Value>,
}

/// How the stand-in answers.
#[derive(Clone, Default)]
pub struct Behaviour {
    /// Workloads report ready from this status read on (per object).
    pub ready_after_reads: usize,
    /// Labels of the namespace GET answers; None: 404.
    pub namespace_labels: Option<Value>,
    /// What listing the pods answers; None: an empty list.
    pub pods: Option<Value>,
    /// What listing the nodes answers; None: [`node_list`].
    pub nodes: Option<Value>,
    /// A circe-worker StatefulSet is ready only once a [`Pod`] of it runs
    /// (the test starts the workers it was asked for, as a kubelet would).
    pub kubelet: bool,
}

/// A pod of the stand-in's cluster: a real server the test started,
/// listed (labels, node, IP, gRPC port) and port-forwarded to.
#[derive(Debug, Clone)]
pub struct Pod {
    pub name: String,
    /// Its Deployment or DaemonSet.
    pub workload: String,
    pub labels: BTreeMap<String, String>,
    pub node: String,
    /// Where its gRPC server listens.
    pub addr: SocketAddr,
}

#[derive(Clone, Default)]
pub struct ApiServer {
    requests: Arc<Mutex<Vec<Request>>>,
    pub status_reads: Arc<Mutex<BTreeMap<String, usize>>>,
    behaviour: Behaviour,
    pods: Arc<Mutex<Vec<Pod>>>,
    /// `pod:port` of every port-forward, in order.
    forwarded: Arc<Mutex<Vec<String>>>,
    /// What listing the nodes answers from now on, if set ([`ApiServer::set_nodes`]).
    nodes_now: Arc<Mutex<Option<Value>>>,
    /// Where it serves, once [`ApiServer::serve`]d.
    address: Arc<Mutex<Option<SocketAddr>>>,
    /// The StatefulSets applied and not deleted, by name (listed back).
    stateful_sets: Arc<Mutex<BTreeMap<String, Value>>>,
    /// Where deleted pods are told (the test's kubelet starts them again).
    deletions: Arc<Mutex<Option<tokio::sync::mpsc::UnboundedSender<Pod>>>>,
}

impl ApiServer {
    pub fn new(behaviour: Behaviour) -> ApiServer {
        ApiServer {
            behaviour,
            ..Default::default()
        }
    }

    /// A real kube client whose every request this stand-in answers.
    pub fn client(&self) -> kube::Client {
        let server = self.clone();
        let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let server = server.clone();
            async move {
                let (status, answer) = server.answer(req).await;
                Ok::<_, std::convert::Infallible>(
                    http::Response::builder()
                        .status(status)
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .body(kube::client::Body::from(serde_json::to_vec(&answer).unwrap()))
                        .unwrap(),
                )
            }
        });
        kube::Client::new(service, "default")
    }

    /// Serves on a real socket on 127.0.0.1 (HTTP/1.1 with upgrades, as
    /// port-forwarding needs) and returns a kube client of it.
    pub async fn serve(&self) -> kube::Client {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = self.clone();
        tokio::spawn(async move {
            while let Ok((io, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let server = server.clone();
                        async move { Ok::<_, std::convert::Infallible>(server.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        *self.address.lock().unwrap() = Some(addr);
        let config = kube::Config::new(format!("http://{addr}").parse().expect("URL"));
        kube::Client::try_from(config).expect("client")
    }

    /// A kubeconfig naming this stand-in (once [`ApiServer::serve`]d), as a
    /// user's names their cluster: what the `jupiterctl` binary reads.
    pub fn kubeconfig(&self) -> String {
        let addr = self.address.lock().unwrap().expect("served");
        format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: stand-in\n  cluster:\n    server: http://{addr}\n\
             users:\n- name: user\n  user: {{}}\n\
             contexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: user\n    namespace: default\n\
             current-context: stand-in\n"
        )
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Adds pods to the cluster.
    pub fn add_pods(&self, pods: impl IntoIterator<Item = Pod>) {
        self.pods.lock().unwrap().extend(pods);
    }

    /// Lists these nodes from now on (a node turning NotReady).
    pub fn set_nodes(&self, nodes: Value) {
        *self.nodes_now.lock().unwrap() = Some(nodes);
    }

    /// Removes the pods `keep` refuses (a force deletion, a move).
    pub fn retain_pods(&self, keep: impl Fn(&Pod) -> bool) {
        self.pods.lock().unwrap().retain(|p| keep(p));
    }

    /// The pods deleted from now on, as the API server deletes them (the
    /// pod stays listed: its controller starts it again at once). A forced
    /// deletion (grace period 0) is not told: the pod is gone, as from a
    /// node that is gone.
    pub fn watch_deletions(&self) -> tokio::sync::mpsc::UnboundedReceiver<Pod> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        *self.deletions.lock().unwrap() = Some(tx);
        rx
    }

    /// `pod:port` of every port-forward so far, in order.
    pub fn forwarded(&self) -> Vec<String> {
        self.forwarded.lock().unwrap().clone()
    }

    async fn handle(&self, mut req: http::Request<hyper::body::Incoming>) -> http::Response<Full<Bytes>> {
        if req.uri().path().ends_with("/portforward") {
            let upgrade = hyper::upgrade::on(&mut req);
            return self.port_forward(req, upgrade);
        }
        let (status, answer) = self.answer(req).await;
        http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(serde_json::to_vec(&answer).unwrap())))
            .unwrap()
    }

    /// Upgrades to the port-forward WebSocket of the named pod and carries
    /// its port 0's channel to the pod's real server.
    fn port_forward<B>(
        &self,
        req: http::Request<B>,
        upgrade: hyper::upgrade::OnUpgrade,
    ) -> http::Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        let query = parse_query(req.uri().query().unwrap_or(""));
        self.requests.lock().unwrap().push(Request {
            method: req.method().to_string(),
            path: path.clone(),
            query: query.clone(),
            content_type: None,
            body: None,
        });
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let name = segments.get(5).copied().unwrap_or_default();
        let port: u16 = query.get("ports").and_then(|p| p.parse().ok()).expect("one port");
        let pod = self.pods.lock().unwrap().iter().find(|p| p.name == name).cloned();
        let (Some(pod), Some(key)) = (pod, req.headers().get(http::header::SEC_WEBSOCKET_KEY)) else {
            let (status, body) = not_found(&path);
            return http::Response::builder()
                .status(status)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(serde_json::to_vec(&body).unwrap())))
                .unwrap();
        };
        self.forwarded.lock().unwrap().push(format!("{name}:{port}"));
        let accept = derive_accept_key(key.as_bytes());
        tokio::spawn(async move {
            let Ok(upgraded) = upgrade.await else { return };
            let ws =
                WebSocketStream::from_raw_socket(hyper_util::rt::TokioIo::new(upgraded), Role::Server, None)
                    .await;
            carry(ws, pod.addr, port).await;
        });
        http::Response::builder()
            .status(http::StatusCode::SWITCHING_PROTOCOLS)
            .header(http::header::CONNECTION, "Upgrade")
            .header(http::header::UPGRADE, "websocket")
            .header(http::header::SEC_WEBSOCKET_ACCEPT, accept)
            .header(http::header::SEC_WEBSOCKET_PROTOCOL, "v4.channel.k8s.io")
            .body(Full::new(Bytes::new()))
            .unwrap()
    }

    async fn answer<B>(&self, req: http::Request<B>) -> (u16, Value)
    where
        B: hyper::body::Body,
        B::Error: std::fmt::Debug,
    {
        let (parts, body) = req.into_parts();
        let bytes = body.collect().await.expect("request body").to_bytes();
        let body: Option<Value> =
            (!bytes.is_empty()).then(|| serde_json::from_slice(&bytes).expect("JSON body"));
        let request = Request {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: parse_query(parts.uri.query().unwrap_or("")),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: body.clone(),
        };
        self.requests.lock().unwrap().push(request.clone());
        self.respond(&request)
    }

    fn respond(&self, r: &Request) -> (u16, Value) {
        let segments: Vec<&str> = r.path.trim_matches('/').split('/').collect();
        match (r.method.as_str(), segments.as_slice()) {
            ("GET", ["api", "v1", "nodes"]) => {
                let now = self.nodes_now.lock().unwrap().clone();
                (
                    200,
                    now.or_else(|| self.behaviour.nodes.clone())
                        .unwrap_or_else(node_list),
                )
            }
            ("GET", ["api", "v1", "namespaces", ns, "pods"]) => (
                200,
                self.behaviour
                    .pods
                    .clone()
                    .unwrap_or_else(|| self.pod_list(ns, &r.query)),
            ),
            ("PATCH", path) => {
                // Apply: the object as sent, with what the server fills in.
                let mut object = r.body.clone().unwrap_or_default();
                object["metadata"]["uid"] = json!(format!("uid-{}", r.path));
                object["metadata"]["resourceVersion"] = json!("1");
                object["metadata"]["generation"] = json!(1);
                object["metadata"]["managedFields"] =
                    json!([{"manager": "jupiterctl", "operation": "Apply"}]);
                if let [.., "statefulsets", name] = path {
                    self.stateful_sets
                        .lock()
                        .unwrap()
                        .insert(name.to_string(), object.clone());
                }
                (200, object)
            }
            ("GET", ["apis", "apps", "v1", "namespaces", _, "statefulsets"]) => {
                let items: Vec<Value> = self.stateful_sets_matching(&r.query).into_values().collect();
                (
                    200,
                    json!({"apiVersion": "apps/v1", "kind": "StatefulSetList", "metadata": {}, "items": items}),
                )
            }
            ("DELETE", ["apis", "apps", "v1", "namespaces", _, "statefulsets"]) => {
                let gone = self.stateful_sets_matching(&r.query);
                self.stateful_sets
                    .lock()
                    .unwrap()
                    .retain(|name, _| !gone.contains_key(name));
                let items: Vec<Value> = gone.into_values().collect();
                (
                    200,
                    json!({"apiVersion": "apps/v1", "kind": "StatefulSetList", "metadata": {}, "items": items}),
                )
            }
            ("GET", ["apis", "apps", "v1", "namespaces", ns, kind, name, "status"]) => {
                let reads = {
                    let mut counts = self.status_reads.lock().unwrap();
                    let n = counts.entry(format!("{kind}/{name}")).or_default();
                    *n += 1;
                    *n
                };
                let started =
                    !(self.behaviour.kubelet && *kind == "statefulsets" && name.starts_with("circe-worker-"))
                        || self.pods.lock().unwrap().iter().any(|p| p.workload == *name);
                let ready = reads > self.behaviour.ready_after_reads && started;
                (200, workload_status(ns, kind, name, ready))
            }
            ("GET", ["api", "v1", "namespaces", ns]) => match &self.behaviour.namespace_labels {
                Some(labels) => (
                    200,
                    json!({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": ns, "uid": "ns-uid", "labels": labels}}),
                ),
                None => not_found(ns),
            },
            ("DELETE", ["api", "v1", "namespaces", ns]) => (
                200,
                json!({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": ns, "uid": "ns-uid"}, "status": {"phase": "Terminating"}}),
            ),
            ("DELETE", ["api", "v1", "namespaces", ns, "pods"]) if self.behaviour.pods.is_none() => {
                let deleted = self.pod_list(ns, &r.query);
                let names: Vec<&str> = deleted["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p["metadata"]["name"].as_str())
                    .collect();
                let forced = r.body.as_ref().is_some_and(|b| b["gracePeriodSeconds"] == 0);
                if forced {
                    self.retain_pods(|p| !names.contains(&p.name.as_str()));
                } else if let Some(tx) = self.deletions.lock().unwrap().as_ref() {
                    for pod in self
                        .pods
                        .lock()
                        .unwrap()
                        .iter()
                        .filter(|p| names.contains(&p.name.as_str()))
                    {
                        let _ = tx.send(pod.clone());
                    }
                }
                (200, deleted)
            }
            ("DELETE", [.., kind]) => (
                200,
                json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {}, "items": []}),
            ),
            _ => not_found(&r.path),
        }
    }
}

impl ApiServer {
    /// The pods the label and field selectors of `query` match.
    /// The StatefulSets the query's label selector matches, by name.
    fn stateful_sets_matching(&self, query: &BTreeMap<String, String>) -> BTreeMap<String, Value> {
        let labels = selector(query.get("labelSelector"));
        self.stateful_sets
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, set)| {
                labels
                    .iter()
                    .all(|(k, v)| set["metadata"]["labels"][k] == v.as_str())
            })
            .map(|(name, set)| (name.clone(), set.clone()))
            .collect()
    }

    fn pod_list(&self, ns: &str, query: &BTreeMap<String, String>) -> Value {
        let labels = selector(query.get("labelSelector"));
        let fields = selector(query.get("fieldSelector"));
        let items: Vec<Value> = self
            .pods
            .lock()
            .unwrap()
            .iter()
            .filter(|p| labels.iter().all(|(k, v)| p.labels.get(k) == Some(v)))
            .filter(|p| fields.iter().all(|(k, v)| k == "spec.nodeName" && *v == p.node))
            .map(|p| {
                json!({"metadata": {"name": p.name, "namespace": ns, "labels": p.labels},
                       "spec": {"nodeName": p.node, "containers": [{"name": "role",
                                "ports": [{"name": "grpc", "containerPort": p.addr.port()}]}]},
                       "status": {"phase": "Running", "podIP": p.addr.ip().to_string(),
                                  "conditions": [{"type": "Ready", "status": "True"}]}})
            })
            .collect();
        json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items})
    }
}

/// Carries channel 0 of a port-forward WebSocket to `addr` and back, as
/// the kubelet does: each channel of the port first says its number.
async fn carry<S>(ws: WebSocketStream<S>, addr: SocketAddr, port: u16)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let [lo, hi] = port.to_le_bytes();
    for channel in [0u8, 1] {
        if sink.send(Message::binary(vec![channel, lo, hi])).await.is_err() {
            return;
        }
    }
    let Ok(pod) = tokio::net::TcpStream::connect(addr).await else {
        let _ = sink
            .send(Message::binary(b"\x01connection refused".to_vec()))
            .await;
        return;
    };
    let (mut from_pod, mut to_pod) = pod.into_split();
    let inbound = async move {
        while let Some(Ok(message)) = stream.next().await {
            let data = match message {
                Message::Binary(data) if data.len() > 1 && data[0] == 0 => data,
                Message::Close(_) => break,
                _ => continue,
            };
            if to_pod.write_all(&data[1..]).await.is_err() {
                break;
            }
        }
        let _ = to_pod.shutdown().await;
    };
    let outbound = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from_pod.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let mut frame = Vec::with_capacity(n + 1);
            frame.push(0);
            frame.extend_from_slice(&buf[..n]);
            if sink.send(Message::binary(frame)).await.is_err() {
                return;
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    };
    tokio::join!(inbound, outbound);
}

/// The `key=value` pairs of a label or field selector.
fn selector(selector: Option<&String>) -> Vec<(String, String)> {
    selector
        .map(|s| {
            s.split(',')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn not_found(what: &str) -> (u16, Value) {
    (
        404,
        json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
               "message": format!("{what} not found"), "reason": "NotFound", "code": 404}),
    )
}

pub fn node(name: &str, ready: &str, unschedulable: bool, taint: Option<&str>) -> Value {
    let taints: Vec<Value> = taint
        .map(|effect| json!({"key": "node-role.kubernetes.io/control-plane", "effect": effect}))
        .into_iter()
        .collect();
    json!({"metadata": {"name": name},
           "spec": {"unschedulable": unschedulable, "taints": taints},
           "status": {"conditions": [{"type": "Ready", "status": ready}]}})
}

/// Three usable nodes, plus one of each kind that must not be used.
pub fn node_list() -> Value {
    let mut items: Vec<Value> = NODES.iter().map(|n| node(n, "True", false, None)).collect();
    items.push(node("not-ready", "False", false, None));
    items.push(node("cordoned", "True", true, None));
    items.push(node("control-plane", "True", false, Some("NoSchedule")));
    json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": items})
}

fn workload_status(ns: &str, kind: &str, name: &str, ready: bool) -> Value {
    let n = i64::from(ready);
    let (kind_name, status) = if kind == "deployments" || kind == "statefulsets" {
        (
            if kind == "deployments" {
                "Deployment"
            } else {
                "StatefulSet"
            },
            json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": n}),
        )
    } else {
        (
            "DaemonSet",
            json!({"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3,
                   "numberMisscheduled": 0, "updatedNumberScheduled": 3, "numberReady": 3 * n}),
        )
    };
    json!({"apiVersion": "apps/v1", "kind": kind_name,
           "metadata": {"name": name, "namespace": ns, "generation": 1},
           "spec": {"replicas": 1, "selector": {}, "template": {}},
           "status": status})
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}
