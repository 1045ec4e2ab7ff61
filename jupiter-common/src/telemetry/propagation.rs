//! W3C trace context (`traceparent`) across gRPC: every client call
//! carries the caller's current span in its metadata ([`TracedChannel`]),
//! and every server opens a span for each call under it
//! ([`ServerTraceLayer`]), named and attributed after the RPC semantic
//! conventions (`rpc.system`, `rpc.service`, `rpc.method`, status).

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{FutureExt, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::Tracer;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes `cx`'s span into `headers` as `traceparent`; nothing when it
/// has no valid span (tracing off).
pub fn inject(cx: &Context, headers: &mut http::HeaderMap) {
    if cx.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(cx, &mut HeaderInjector(headers));
    }
}

/// The remote span a call's `traceparent` names, as a parent context.
pub fn extract(headers: &http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// `cx`'s span as a `traceparent` string (empty when tracing is off), to
/// keep with data that outlives the process.
pub fn traceparent(cx: &Context) -> String {
    let mut headers = http::HeaderMap::new();
    inject(cx, &mut headers);
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The parent context a kept `traceparent` string names.
pub fn from_traceparent(traceparent: &str) -> Context {
    let mut headers = http::HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_str(traceparent) {
        headers.insert("traceparent", value);
    }
    extract(&headers)
}

/// A gRPC channel whose every call carries the caller's current trace
/// context (`Context::current()`, which callers set with
/// `FutureExt::with_context`).
#[derive(Debug, Clone)]
pub struct TracedChannel {
    inner: tonic::transport::Channel,
}

impl TracedChannel {
    pub fn new(inner: tonic::transport::Channel) -> Self {
        Self { inner }
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for TracedChannel {
    type Response = <tonic::transport::Channel as tower::Service<http::Request<tonic::body::Body>>>::Response;
    type Error = <tonic::transport::Channel as tower::Service<http::Request<tonic::body::Body>>>::Error;
    type Future = <tonic::transport::Channel as tower::Service<http::Request<tonic::body::Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        inject(&Context::current(), request.headers_mut());
        self.inner.call(request)
    }
}

/// Opens a server span for every call a role serves (when the role
/// traces), under the caller's `traceparent`, and runs the handler in it.
#[derive(Clone)]
pub struct ServerTraceLayer {
    tracer: Option<Tracer>,
}

impl ServerTraceLayer {
    pub fn new(tracer: Option<Tracer>) -> Self {
        Self { tracer }
    }
}

impl<S> tower::Layer<S> for ServerTraceLayer {
    type Service = ServerTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerTrace {
            inner,
            tracer: self.tracer.clone(),
        }
    }
}

#[derive(Clone)]
pub struct ServerTrace<S> {
    inner: S,
    tracer: Option<Tracer>,
}

/// `(service, method)` of a gRPC path `/pkg.Service/Method`.
fn rpc_names(path: &str) -> (String, String) {
    let path = path.trim_start_matches('/');
    match path.split_once('/') {
        Some((service, method)) => (service.to_string(), method.to_string()),
        None => (path.to_string(), String::new()),
    }
}

/// Calls not worth a span: health checks and reflection (status polls
/// them many times a second).
fn traced(service: &str) -> bool {
    service.starts_with("jupiter.")
}

impl<S, B, ResB> tower::Service<http::Request<B>> for ServerTrace<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResB>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let (service, method) = rpc_names(request.uri().path());
        let Some(tracer) = self.tracer.as_ref().filter(|_| traced(&service)) else {
            return Box::pin(self.inner.call(request));
        };
        let parent = extract(request.headers());
        let span = tracer
            .span_builder(format!("{service}/{method}"))
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.service", service),
                KeyValue::new("rpc.method", method),
            ])
            .start_with_context(tracer, &parent);
        let cx = parent.with_span(span);
        let future = {
            let _attached = cx.clone().attach();
            self.inner.call(request)
        };
        Box::pin(async move {
            let result = future.with_context(cx.clone()).await;
            let span = cx.span();
            match &result {
                Ok(response) => {
                    // A failed call answers with its status in the headers
                    // (trailers-only); a successful one in trailers.
                    let code = response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<i32>().ok())
                        .unwrap_or(0);
                    span.set_attribute(KeyValue::new("rpc.grpc.status_code", i64::from(code)));
                    if code != 0 {
                        let message = response
                            .headers()
                            .get("grpc-message")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        span.set_status(Status::error(message));
                    }
                }
                Err(_) => span.set_status(Status::error("transport error")),
            }
            span.end();
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    #[test]
    fn a_traceparent_round_trips_and_nothing_is_sent_without_a_span() {
        let span = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex"),
            SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let cx = Context::new().with_remote_span_context(span.clone());
        let text = traceparent(&cx);
        assert_eq!(text, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let back = from_traceparent(&text);
        assert_eq!(back.span().span_context().trace_id(), span.trace_id());
        assert_eq!(back.span().span_context().span_id(), span.span_id());
        assert_eq!(traceparent(&Context::new()), "");
        assert!(!from_traceparent("").span().span_context().is_valid());
        assert_eq!(
            rpc_names("/jupiter.circe.worker.v1.CirceWorker/Push"),
            ("jupiter.circe.worker.v1.CirceWorker".into(), "Push".into())
        );
    }
}
