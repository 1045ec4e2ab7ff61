//! A stand-in for the Kubernetes API server: an in-process tower service
//! behind a real `kube::Client` that records every request (method, path,
//! query, body) and answers as the API server would. So what a test
//! asserts about the requests is exactly the HTTP jupiterctl would send.

use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

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
}

#[derive(Clone, Default)]
pub struct ApiServer {
    requests: Arc<Mutex<Vec<Request>>>,
    pub status_reads: Arc<Mutex<BTreeMap<String, usize>>>,
    behaviour: Behaviour,
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
            async move { Ok::<_, std::convert::Infallible>(server.answer(req).await) }
        });
        kube::Client::new(service, "default")
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    async fn answer(&self, req: http::Request<kube::client::Body>) -> http::Response<kube::client::Body> {
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
        let (status, answer) = self.respond(&request);
        http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(kube::client::Body::from(serde_json::to_vec(&answer).unwrap()))
            .unwrap()
    }

    fn respond(&self, r: &Request) -> (u16, Value) {
        let segments: Vec<&str> = r.path.trim_matches('/').split('/').collect();
        match (r.method.as_str(), segments.as_slice()) {
            ("GET", ["api", "v1", "nodes"]) => (200, self.behaviour.nodes.clone().unwrap_or_else(node_list)),
            ("GET", ["api", "v1", "namespaces", _, "pods"]) => (
                200,
                self.behaviour.pods.clone().unwrap_or_else(
                    || json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []}),
                ),
            ),
            ("PATCH", _) => {
                // Apply: the object as sent, with what the server fills in.
                let mut object = r.body.clone().unwrap_or_default();
                object["metadata"]["uid"] = json!(format!("uid-{}", r.path));
                object["metadata"]["resourceVersion"] = json!("1");
                object["metadata"]["generation"] = json!(1);
                (200, object)
            }
            ("GET", ["apis", "apps", "v1", "namespaces", ns, kind, name, "status"]) => {
                let reads = {
                    let mut counts = self.status_reads.lock().unwrap();
                    let n = counts.entry(format!("{kind}/{name}")).or_default();
                    *n += 1;
                    *n
                };
                let ready = reads > self.behaviour.ready_after_reads;
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
            ("DELETE", [.., kind]) => (
                200,
                json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {}, "items": []}),
            ),
            _ => not_found(&r.path),
        }
    }
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
    let (kind_name, status) = if kind == "deployments" {
        (
            "Deployment",
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
