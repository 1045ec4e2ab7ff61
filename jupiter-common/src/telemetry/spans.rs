//! Spans about inputs, opened and closed at the instants the pipeline
//! measured (the same clock readings its task reports carry), so a trace
//! and `jupiterctl run`'s timings agree to the nanosecond.

use super::Telemetry;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The instant `nanos` after the Unix epoch (the pipeline's timestamps).
pub fn at_unix_nanos(nanos: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos.max(0) as u64)
}

/// Names the input the current call is about on the call's span (the
/// server span [`super::propagation::ServerTraceLayer`] opened): every span
/// about an input carries `jupiter.input_id`.
pub fn tag_input(input: &str) {
    let cx = Context::current();
    let span = cx.span();
    if span.is_recording() {
        span.set_attribute(KeyValue::new("jupiter.input_id", input.to_string()));
    }
}

/// A span still open; nothing at all when the role exports no spans.
/// Clones share the span.
#[derive(Clone, Debug, Default)]
pub struct OpenSpan(Option<Context>);

impl OpenSpan {
    /// The context to run or parent things under: the span's, or an empty
    /// one when tracing is off.
    pub fn context(&self) -> Context {
        self.0.clone().unwrap_or_default()
    }

    pub fn set(&self, attribute: KeyValue) {
        if let Some(cx) = &self.0 {
            cx.span().set_attribute(attribute);
        }
    }

    pub fn fail(&self, message: impl Into<String>) {
        if let Some(cx) = &self.0 {
            cx.span().set_status(Status::error(message.into()));
        }
    }

    /// Ends the span at `at`.
    pub fn end_at(&self, at: SystemTime) {
        if let Some(cx) = &self.0 {
            cx.span().end_with_timestamp(at);
        }
    }

    /// Ends the span now.
    pub fn end(&self) {
        self.end_at(SystemTime::now());
    }
}

impl Telemetry {
    /// Opens `name` under `parent` at `start`.
    pub fn open(
        &self,
        name: impl Into<String>,
        kind: SpanKind,
        parent: &Context,
        start: SystemTime,
        attributes: Vec<KeyValue>,
    ) -> OpenSpan {
        let Some(tracer) = self.tracer() else {
            return OpenSpan(None);
        };
        let span = tracer
            .span_builder(name.into())
            .with_kind(kind)
            .with_start_time(start)
            .with_attributes(attributes)
            .start_with_context(tracer, parent);
        OpenSpan(Some(parent.with_span(span)))
    }

    /// A span from `start` to `end` under `parent`, closed at once.
    pub fn record(
        &self,
        name: impl Into<String>,
        parent: &Context,
        start: SystemTime,
        end: SystemTime,
        attributes: Vec<KeyValue>,
    ) -> OpenSpan {
        let span = self.open(name, SpanKind::Internal, parent, start, attributes);
        span.end_at(end);
        span
    }
}

/// One push of an input's files from `from` to `to` (task names, or
/// `home`): a client span whose context the push's calls carry, and the
/// push counters.
pub struct Push<'a> {
    telemetry: &'a Telemetry,
    span: OpenSpan,
    from: &'a str,
    to: &'a str,
}

impl Telemetry {
    /// Opens the span of a push to `to` over `rpc` (`Service/Method`).
    pub fn push<'a>(
        &'a self,
        parent: &Context,
        input: &str,
        from: &'a str,
        to: &'a str,
        rpc: (&str, &str),
    ) -> Push<'a> {
        let span = self.open(
            format!("push {to}"),
            SpanKind::Client,
            parent,
            SystemTime::now(),
            vec![
                KeyValue::new("jupiter.input_id", input.to_string()),
                KeyValue::new("jupiter.task", from.to_string()),
                KeyValue::new("jupiter.to", to.to_string()),
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.service", rpc.0.to_string()),
                KeyValue::new("rpc.method", rpc.1.to_string()),
            ],
        );
        Push {
            telemetry: self,
            span,
            from,
            to,
        }
    }
}

impl Push<'_> {
    /// What the push's calls run under.
    pub fn context(&self) -> Context {
        self.span.context()
    }

    /// Ends the push: `bytes` acknowledged after `retries` failed attempts,
    /// or the error it gave up with.
    pub fn end(self, bytes: u64, retries: u32, error: Option<&str>) {
        let labels = [("from", self.from), ("to", self.to)];
        let metrics = self.telemetry.metrics();
        metrics
            .counter("jupiter_push_bytes_total", &labels)
            .increment(bytes);
        metrics
            .counter("jupiter_push_retries_total", &labels)
            .increment(u64::from(retries));
        self.span.set(KeyValue::new("jupiter.bytes", bytes as i64));
        self.span
            .set(KeyValue::new("jupiter.attempts", i64::from(retries) + 1));
        if let Some(error) = error {
            self.span.fail(error.to_string());
        }
        self.span.end();
    }
}
