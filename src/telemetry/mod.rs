//! Observability: the `tracing` subscriber (logs, and the spans that OTLP exports), Prometheus
//! metrics, and the W3C trace context that links a client's call, reflow's spans, the audit row
//! and the upstream's request.

pub mod context;
pub mod metrics;
#[cfg(feature = "otel")]
mod otlp;
pub mod spans;

use std::time::Duration;

use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, Settings};

pub use metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[cfg(feature = "otel")]
    #[error(transparent)]
    Export(#[from] otlp::ExportError),
}

/// What `install` started; `shutdown` flushes queued spans within the grace period.
#[derive(Clone, Default)]
pub struct Tracing {
    #[cfg(feature = "otel")]
    pipeline: Option<otlp::Pipeline>,
}

impl Tracing {
    pub fn exporting(&self) -> bool {
        #[cfg(feature = "otel")]
        return self.pipeline.is_some();
        #[cfg(not(feature = "otel"))]
        false
    }

    pub fn dropped_spans(&self) -> u64 {
        #[cfg(feature = "otel")]
        if let Some(p) = &self.pipeline {
            return p.dropped.load(std::sync::atomic::Ordering::Relaxed);
        }
        0
    }

    pub async fn shutdown(self, grace: Duration) {
        #[cfg(feature = "otel")]
        if let Some(p) = self.pipeline {
            p.shutdown(grace).await;
        }
        let _ = grace;
    }
}

/// Installs the process's subscriber: logs per `logging.*` (admin commands: warnings only), and
/// with `export`, spans of target `reflow::otel` to OTLP when `telemetry.enabled`. The log
/// level never filters what is exported, and export never sees anything but MCP spans.
pub fn install(settings: &Settings, quiet: bool, export: bool) -> Result<Tracing, TelemetryError> {
    let (layer, tracing) = layer(settings, quiet, export)?;
    if tracing_subscriber::registry()
        .with(layer)
        .try_init()
        .is_ok()
    {
        log_panics();
    }
    Ok(tracing)
}

type Boxed = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;

/// The subscriber's layers. Without export the log level is a global filter: what it rejects is
/// never built. (An `Option` OTLP layer left `None` beside a per-layer log filter declared
/// interest in everything, so every span of every level, ours, sqlx's and tower-http's, was
/// built on each request for nothing; a lone per-layer filter, tried next, lost events on
/// Postgres.) With export, each layer has its own filter: the log level never filters export.
fn layer(
    settings: &Settings,
    quiet: bool,
    export: bool,
) -> Result<(Boxed, Tracing), TelemetryError> {
    use tracing_subscriber::EnvFilter;
    let level = if quiet {
        "warn"
    } else {
        settings.logging.level.as_str()
    };
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt: Boxed = match settings.logging.format {
        LogFormat::Json => fmt.json().with_current_span(true).boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    #[cfg(feature = "otel")]
    if export && settings.telemetry.enabled {
        let pipeline = otlp::Pipeline::start(&settings.telemetry)?;
        let otel = tracing_opentelemetry::layer()
            .with_tracer(pipeline.tracer())
            .with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target(spans::TARGET, tracing::Level::INFO),
            );
        let layer = fmt.with_filter(filter).and_then(otel).boxed();
        let tracing = Tracing {
            pipeline: Some(pipeline),
        };
        return Ok((layer, tracing));
    }
    #[cfg(not(feature = "otel"))]
    let _ = export;
    Ok((filter.and_then(fmt).boxed(), Tracing::default()))
}

/// A panic in a request's task ends only that connection, so it would otherwise pass as a
/// silent disconnect; this puts it in the log, in the log's format, with where it happened.
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(not a string)");
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let thread = std::thread::current();
        let backtrace = std::backtrace::Backtrace::capture();
        tracing::error!(
            panic = message,
            location,
            thread = thread.name().unwrap_or("(unnamed)"),
            backtrace = %backtrace,
            "panicked"
        );
    }));
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use crate::config::Settings;

    fn request_span_enabled(level: &str) -> (bool, bool) {
        let mut settings = Settings::default();
        settings.logging.level = level.to_string();
        let (layer, _) = super::layer(&settings, false, false).unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let ours = tracing::info_span!(target: super::spans::TARGET, "mcp.server");
            let debug = tracing::debug_span!("request");
            (!ours.is_disabled(), !debug.is_disabled())
        })
    }

    /// Without export, a request's spans are built only when the log level would show them.
    #[test]
    fn spans_are_built_only_for_a_layer_that_wants_them() {
        assert_eq!(request_span_enabled("warn"), (false, false));
        assert_eq!(
            request_span_enabled("warn,reflow::cli::serve=info"),
            (false, false)
        );
        assert_eq!(request_span_enabled("info"), (true, false));
        assert_eq!(request_span_enabled("debug"), (true, true));
    }
}
