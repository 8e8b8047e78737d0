//! Prometheus metrics: one registry owned by the server (no global), recorded on the request
//! path with atomics behind a shared read lock per label set (prometheus-client's `Family`),
//! plus values read at scrape time from their owners (sessions, processes, the audit queue).

use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Bucket boundaries the OpenTelemetry MCP conventions advise for operation durations (s).
pub const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServerLabels {
    pub mcp_method_name: String,
    pub target: String,
    pub mcp_protocol_version: String,
    pub error_type: String,
    pub gen_ai_tool_name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClientLabels {
    pub target: String,
    pub mcp_method_name: String,
    pub error_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub decision: &'static str,
    pub resource_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabel {
    pub target: String,
}

/// Every `outcome` of a requestState redemption (see `StateError::outcome`).
pub const REDEMPTION_OUTCOMES: [&str; 7] = [
    "accepted",
    "tampered",
    "foreign",
    "mismatch",
    "expired",
    "replayed",
    "missing_response",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

/// Values owned elsewhere, read at each scrape.
#[derive(Clone, Debug, Default)]
pub struct Live {
    pub sessions: i64,
    pub listen_streams: i64,
    /// (target, state, count) of stdio processes.
    pub processes: Vec<(String, &'static str, i64)>,
    pub audit_queue: i64,
    pub audit_written: u64,
    pub audit_dropped: u64,
    pub audit_backpressure: u64,
    pub spans_dropped: u64,
    /// Targets whose circuit breaker is open.
    pub breakers_open: Vec<String>,
}

type LiveFn = Box<dyn Fn() -> Live + Send + Sync>;

pub struct Metrics {
    registry: Registry,
    tool_label: bool,
    server: Family<ServerLabels, Histogram>,
    client: Family<ClientLabels, Histogram>,
    decisions: Family<DecisionLabels, Counter>,
    upstream_up: Family<TargetLabel, Gauge>,
    redemptions: Family<OutcomeLabel, Counter>,
    live: Arc<OnceLock<LiveFn>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

impl Metrics {
    pub fn new(tool_label: bool) -> Self {
        let mut registry = Registry::default();
        let server =
            Family::<ServerLabels, Histogram>::new_with_constructor(histogram as fn() -> Histogram);
        let client =
            Family::<ClientLabels, Histogram>::new_with_constructor(histogram as fn() -> Histogram);
        registry.register(
            "mcp_server_operation_duration_seconds",
            "MCP request duration as observed by reflow, from receipt to the response",
            server.clone(),
        );
        registry.register(
            "mcp_client_operation_duration_seconds",
            "Duration of reflow's requests to upstream MCP servers",
            client.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "reflow_policy_decisions",
            "Policy decisions about a named tool, prompt, resource or template",
            decisions.clone(),
        );
        let upstream_up = Family::<TargetLabel, Gauge>::default();
        registry.register(
            "reflow_upstream_up",
            "1 when the last request to the target reached it, 0 when it could not",
            upstream_up.clone(),
        );
        let redemptions = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "reflow_request_state_redemptions",
            "2026-07-28 requestState redemptions by outcome",
            redemptions.clone(),
        );
        // Closed label sets start at zero, so rate() and alerts work from the first scrape.
        for decision in ["allow", "deny"] {
            for resource_type in ["tool", "prompt", "resource"] {
                let _ = decisions.get_or_create(&DecisionLabels {
                    decision,
                    resource_type,
                });
            }
        }
        for outcome in REDEMPTION_OUTCOMES {
            let _ = redemptions.get_or_create(&OutcomeLabel { outcome });
        }
        let live: Arc<OnceLock<LiveFn>> = Arc::default();
        registry.register_collector(Box::new(LiveCollector(live.clone())));
        Self {
            registry,
            tool_label,
            server,
            client,
            decisions,
            upstream_up,
            redemptions,
            live,
        }
    }

    /// Where the scrape-time values come from; set once the gateway exists.
    pub fn set_live(&self, f: impl Fn() -> Live + Send + Sync + 'static) {
        let _ = self.live.set(Box::new(f));
    }

    pub fn tool_label(&self) -> bool {
        self.tool_label
    }

    pub fn observe_server(&self, labels: &ServerLabels, seconds: f64) {
        self.server.get_or_create(labels).observe(seconds);
    }

    pub fn observe_client(&self, labels: &ClientLabels, seconds: f64, reached: bool) {
        self.client.get_or_create(labels).observe(seconds);
        let up = TargetLabel {
            target: labels.target.clone(),
        };
        self.upstream_up.get_or_create(&up).set(i64::from(reached));
    }

    pub fn decision(&self, allowed: bool, resource_type: &'static str) {
        let labels = DecisionLabels {
            decision: if allowed { "allow" } else { "deny" },
            resource_type,
        };
        self.decisions.get_or_create(&labels).inc();
    }

    pub fn redemption(&self, outcome: &'static str) {
        self.redemptions
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProcessLabels {
    target: String,
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

struct LiveCollector(Arc<OnceLock<LiveFn>>);

impl std::fmt::Debug for LiveCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveCollector")
    }
}

impl prometheus_client::collector::Collector for LiveCollector {
    fn encode(
        &self,
        mut enc: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let live = self.0.get().map(|f| f()).unwrap_or_default();
        let info = ConstGauge::new(1i64);
        let mut m = enc.encode_descriptor(
            "reflow_build_info",
            "The running reflow's version",
            None,
            info.metric_type(),
        )?;
        info.encode(m.encode_family(&BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
        })?)?;
        let gauges: [(&str, &str, i64); 3] = [
            (
                "reflow_sessions_active",
                "Legacy-era MCP sessions held by this replica",
                live.sessions,
            ),
            (
                "reflow_listen_streams_active",
                "Open 2026-07-28 subscriptions/listen streams",
                live.listen_streams,
            ),
            (
                "reflow_audit_queue_depth",
                "Audit rows waiting for the writer",
                live.audit_queue,
            ),
        ];
        for (name, help, v) in gauges {
            let g = ConstGauge::new(v);
            g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        let counters: [(&str, &str, u64); 4] = [
            (
                "reflow_audit_rows_written",
                "Audit rows written to the database",
                live.audit_written,
            ),
            (
                "reflow_audit_rows_dropped",
                "Audit rows lost: the queue was full while the database refused writes, or the writer had stopped",
                live.audit_dropped,
            ),
            (
                "reflow_audit_backpressure",
                "Times a request waited because the audit queue was full",
                live.audit_backpressure,
            ),
            (
                "reflow_trace_spans_dropped",
                "Spans dropped because the export queue was full",
                live.spans_dropped,
            ),
        ];
        for (name, help, v) in counters {
            let c = ConstCounter::new(v);
            c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        let probe = ConstGauge::new(0i64);
        let mut m = enc.encode_descriptor(
            "reflow_upstream_breaker_open",
            "1 while a target's circuit breaker is open: its calls fail fast, lists skip it",
            None,
            probe.metric_type(),
        )?;
        for target in live.breakers_open {
            ConstGauge::new(1i64).encode(m.encode_family(&TargetLabel { target })?)?;
        }
        let mut m = enc.encode_descriptor(
            "reflow_stdio_processes",
            "Stdio upstream processes by target and state",
            None,
            probe.metric_type(),
        )?;
        for (target, state, n) in live.processes {
            let labels = ProcessLabels { target, state };
            ConstGauge::new(n).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
