//! Span export that never holds up the pipeline: a finished span is put
//! on a bounded queue without waiting (a full queue drops it, counted),
//! and a task of the role's runtime sends batches to the OTLP endpoint.
//! A collector that is down only costs the spans, never an input's time.

use metrics::Counter;
use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Spans waiting to be sent; more are dropped.
pub const QUEUE: usize = 8192;
/// Spans per export call.
const BATCH: usize = 512;
/// How long a span waits for its batch to fill before it goes anyway.
const LINGER: Duration = Duration::from_millis(200);
/// One export call's limit: an endpoint that does not answer loses its
/// batch instead of holding up the next ones.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

enum Message {
    Span(Box<SpanData>),
    Flush(oneshot::Sender<()>),
}

/// The processor the role's tracer provider ends its spans into.
#[derive(Debug, Clone)]
pub struct QueueProcessor {
    queue: mpsc::Sender<Message>,
    dropped: Counter,
}

/// Sends what [`QueueProcessor`] queued; lives on the role's runtime.
pub struct Sender {
    queue: mpsc::Receiver<Message>,
    exported: Counter,
    dropped: Counter,
}

/// A processor and the task body that exports its spans through `exporter`.
pub fn queue(exported: Counter, dropped: Counter) -> (QueueProcessor, Sender) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (
        QueueProcessor {
            queue: tx,
            dropped: dropped.clone(),
        },
        Sender {
            queue: rx,
            exported,
            dropped,
        },
    )
}

impl QueueProcessor {
    /// Waits (at most `limit`) until every span queued so far was sent or
    /// given up.
    pub async fn flush(&self, limit: Duration) {
        let (done, flushed) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = tokio::time::timeout(limit, flushed).await;
        }
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if self.queue.try_send(Message::Span(Box::new(span))).is_err() {
            self.dropped.increment(1);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        // Flushing is async here: the role awaits [`QueueProcessor::flush`]
        // on its way out.
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

impl Sender {
    /// Exports batches until every processor is gone.
    pub async fn run(mut self, exporter: impl SpanExporter) {
        let mut batch: Vec<SpanData> = Vec::with_capacity(BATCH);
        let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
        loop {
            // Wait for the first span (or flush), then linger for more.
            let Some(first) = self.queue.recv().await else {
                break;
            };
            let deadline = tokio::time::Instant::now() + LINGER;
            let mut next = Some(first);
            while let Some(message) = next.take() {
                match message {
                    Message::Span(span) => batch.push(*span),
                    Message::Flush(done) => flushes.push(done),
                }
                if batch.len() >= BATCH || !flushes.is_empty() {
                    break;
                }
                next = tokio::time::timeout_at(deadline, self.queue.recv())
                    .await
                    .ok()
                    .flatten();
            }
            self.export(&exporter, &mut batch).await;
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
        }
        self.export(&exporter, &mut batch).await;
    }

    async fn export(&self, exporter: &impl SpanExporter, batch: &mut Vec<SpanData>) {
        if batch.is_empty() {
            return;
        }
        let spans = std::mem::take(batch);
        let count = spans.len() as u64;
        match tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(spans)).await {
            Ok(Ok(())) => self.exported.increment(count),
            Ok(Err(e)) => {
                self.dropped.increment(count);
                tracing::debug!(error = %e, spans = count, "exporting spans failed");
            }
            Err(_) => {
                self.dropped.increment(count);
                tracing::debug!(spans = count, "exporting spans timed out");
            }
        }
    }
}
