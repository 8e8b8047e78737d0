//! OTLP export of the gateway's spans (feature `otel`): the exporter for the configured protocol,
//! the SDK's batch processor behind an admission count so a full queue drops (and counts) a
//! span instead of ever making a request wait, and the provider's bounded shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, Span, SpanData, SpanExporter,
    SpanProcessor,
};

use crate::config::{TelemetryProtocol, TelemetrySettings};

/// Spans waiting for export before new ones are dropped.
const QUEUE: usize = 8192;

#[derive(Debug, thiserror::Error)]
#[error("telemetry: cannot build the OTLP exporter for {endpoint}: {reason}")]
pub struct ExportError {
    endpoint: String,
    reason: String,
}

/// The running export; `shutdown` flushes what is queued within a deadline.
#[derive(Clone)]
pub struct Pipeline {
    provider: SdkTracerProvider,
    pub dropped: Arc<AtomicU64>,
}

impl Pipeline {
    pub fn start(settings: &TelemetrySettings) -> Result<Self, ExportError> {
        let endpoint = settings.exporter_endpoint();
        let fail = |reason: String| ExportError {
            endpoint: endpoint
                .clone()
                .unwrap_or_else(|| "the default endpoint".into()),
            reason,
        };
        let exporter = match settings.protocol {
            TelemetryProtocol::HttpProtobuf => {
                let mut b = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_timeout(Duration::from_secs(10));
                if let Some(e) = &endpoint {
                    b = b.with_endpoint(e.clone());
                }
                b.build()
            }
            TelemetryProtocol::Grpc => {
                let mut b = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_timeout(Duration::from_secs(10));
                if let Some(e) = &endpoint {
                    b = b.with_endpoint(e.clone());
                    if e.starts_with("https://") {
                        b = b.with_tls_config(
                            opentelemetry_otlp::tonic_types::transport::ClientTlsConfig::new()
                                .with_native_roots(),
                        );
                    }
                }
                b.build()
            }
        }
        .map_err(|e| fail(e.to_string()))?;
        let pending = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let batch = BatchSpanProcessor::builder(Counted {
            inner: exporter,
            pending: pending.clone(),
        })
        // Larger than our admission limit, so the SDK's own queue never drops uncounted.
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(QUEUE * 2)
                .with_scheduled_delay(Duration::from_secs(1))
                .build(),
        )
        .build();
        let provider = SdkTracerProvider::builder()
            .with_id_generator(super::context::TimeOrderedIds)
            .with_span_processor(Admit {
                inner: batch,
                pending,
                dropped: dropped.clone(),
            })
            .with_resource(
                Resource::builder()
                    .with_service_name(settings.service_name.clone())
                    .build(),
            )
            .build();
        Ok(Self { provider, dropped })
    }

    pub fn tracer(&self) -> opentelemetry_sdk::trace::SdkTracer {
        use opentelemetry::trace::TracerProvider;
        self.provider.tracer("reflow")
    }

    /// Flushes and stops the exporter, giving up after `grace` (a dead collector must not hold
    /// the gateway's exit).
    pub async fn shutdown(self, grace: Duration) {
        let provider = self.provider;
        let done = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(grace));
        match tokio::time::timeout(grace + Duration::from_millis(500), done).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "span export did not finish cleanly"),
            _ => tracing::warn!("span export did not finish within the shutdown grace"),
        }
    }
}

/// Counts spans handed to the exporter, so `Admit` knows how many are still queued.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    pending: Arc<AtomicUsize>,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.pending.fetch_sub(batch.len(), Ordering::Relaxed);
        self.inner.export(batch).await
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Admits a finished span to the batch queue only while fewer than `QUEUE` wait.
#[derive(Debug)]
struct Admit {
    inner: BatchSpanProcessor,
    pending: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
}

impl SpanProcessor for Admit {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }
    fn on_end(&self, span: SpanData) {
        if self.pending.fetch_add(1, Ordering::Relaxed) >= QUEUE {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(target: "reflow::telemetry", "span export queue is full; dropping spans (counted in reflow_trace_spans_dropped_total)");
            }
            return;
        }
        self.inner.on_end(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
