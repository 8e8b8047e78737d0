//! The `telemetry` (OpenTelemetry traces) and `metrics` (Prometheus scrape) sections, and how
//! the standard `OTEL_*` variables layer over them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Secret;

section!(TelemetrySettings {
    /// Export traces over OTLP. Also switched on by `OTEL_EXPORTER_OTLP_ENDPOINT` (or
    /// `…_TRACES_ENDPOINT`); `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` switch it off.
    enabled: bool = false,
    endpoint: Option<String> = None,
    protocol: TelemetryProtocol = TelemetryProtocol::HttpProtobuf,
    service_name: String = "reflow".into(),
    /// The endpoint came from `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: a full URL, used as is.
    #[serde(skip)] endpoint_is_full: bool = false,
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TelemetryProtocol {
    #[default]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    #[serde(rename = "grpc")]
    Grpc,
}

impl TelemetryProtocol {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "http/protobuf" => Some(Self::HttpProtobuf),
            "grpc" => Some(Self::Grpc),
            _ => None,
        }
    }
}

section!(MetricsSettings {
    /// Anyone may read `/metrics` (no token). Default false: an admin token or `metrics.token`.
    public: bool = false,
    /// A bearer token that may read `/metrics` and nothing else (for scrapers).
    token: Option<Secret> = None,
    /// Also serve `/metrics` (only) on this address, e.g. 127.0.0.1:9464, with the same access rule.
    listen: Option<String> = None,
    /// Label operation histograms with the tool name (one series per tool: mind cardinality).
    tool_label: bool = false,
});

impl TelemetrySettings {
    /// The standard OpenTelemetry variables win over the file, as every OTel user expects; a
    /// value that names nothing is an error naming the variable.
    pub(super) fn apply_otel_env(
        &mut self,
        env: &BTreeMap<String, String>,
        problems: &mut Vec<String>,
    ) {
        let get = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        if let Some(endpoint) = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .map(|e| (e, true))
            .or_else(|| get("OTEL_EXPORTER_OTLP_ENDPOINT").map(|e| (e, false)))
        {
            // The signal-specific variable is the full URL; the generic one is a base.
            self.endpoint = Some(endpoint.0.to_string());
            self.endpoint_is_full = endpoint.1;
            self.enabled = true;
        }
        if let Some(p) =
            get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or(get("OTEL_EXPORTER_OTLP_PROTOCOL"))
        {
            match TelemetryProtocol::parse(p) {
                Some(p) => self.protocol = p,
                None => problems.push(format!(
                    "OTEL_EXPORTER_OTLP_PROTOCOL \"{p}\" is not supported: use http/protobuf or grpc"
                )),
            }
        }
        if let Some(name) = get("OTEL_SERVICE_NAME") {
            self.service_name = name.to_string();
        }
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || get("OTEL_TRACES_EXPORTER").is_some_and(|v| v == "none")
        {
            self.enabled = false;
        } else if let Some(exporter) = get("OTEL_TRACES_EXPORTER")
            && exporter != "otlp"
        {
            problems.push(format!(
                "OTEL_TRACES_EXPORTER \"{exporter}\" is not supported: use otlp or none"
            ));
        }
    }

    /// The URL the exporter posts to: for http/protobuf a base gets `/v1/traces`, as the OTLP
    /// spec says of `OTEL_EXPORTER_OTLP_ENDPOINT`; None leaves the exporter's default.
    pub fn exporter_endpoint(&self) -> Option<String> {
        let e = self.endpoint.as_ref()?;
        Some(match self.protocol {
            TelemetryProtocol::HttpProtobuf if !self.endpoint_is_full => {
                format!("{}/v1/traces", e.trim_end_matches('/'))
            }
            _ => e.clone(),
        })
    }

    pub(super) fn validate(&self, problems: &mut Vec<String>) {
        if let Some(endpoint) = &self.endpoint {
            match url::Url::parse(endpoint) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => problems.push(format!(
                    "telemetry.endpoint \"{endpoint}\" must be an http:// or https:// URL"
                )),
            }
        }
        if self.service_name.trim().is_empty() {
            problems.push("telemetry.service_name must not be empty".into());
        }
        if self.enabled && !cfg!(feature = "otel") {
            problems.push(
                "telemetry.enabled: this reflow was built without the `otel` feature; rebuild with default features to export traces".into(),
            );
        }
    }
}

impl MetricsSettings {
    pub(super) fn validate(&self, problems: &mut Vec<String>) {
        if let Some(token) = &self.token
            && token.expose().len() < 16
        {
            problems.push("metrics.token must be at least 16 characters".into());
        }
        if let Some(listen) = &self.listen
            && listen.parse::<std::net::SocketAddr>().is_err()
        {
            problems.push(format!(
                "metrics.listen \"{listen}\" must be an address with a port, e.g. 127.0.0.1:9464"
            ));
        }
    }
}
