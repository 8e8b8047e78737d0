//! The layered configuration: defaults, file, environment and flags; key paths in errors;
//! secrets redacted; the example file equal to the defaults.

use super::*;
use base64::engine::general_purpose::STANDARD as B64;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn with_env(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::load(&Overrides::default(), &env(pairs))
}

/// A file holding `contents`, removed when the returned path drops.
fn temp_file(name: &str, contents: &str) -> tempfile::TempPath {
    let mut file = tempfile::Builder::new()
        .prefix(&format!("reflow-config-{name}-"))
        .suffix(".yaml")
        .tempfile()
        .unwrap();
    std::io::Write::write_all(&mut file, contents.as_bytes()).unwrap();
    file.into_temp_path()
}

fn load_yaml(name: &str, yaml: &str) -> Result<Settings, ConfigError> {
    let file = temp_file(name, yaml);
    let overrides = Overrides {
        config_file: Some(file.to_path_buf()),
        ..Overrides::default()
    };
    Settings::load(&overrides, &env(&[("HOST", "0.0.0.0")]))
}

fn error_text<T: fmt::Debug>(result: Result<T, ConfigError>) -> String {
    result.unwrap_err().to_string()
}

#[test]
fn defaults_without_any_layer() {
    let s = with_env(&[("REFLOW_TEST_X", "1"), ("REFLOW_LOG", "x")]).unwrap();
    assert_eq!(s, Settings::default());
    assert_eq!((s.server.host.as_str(), s.server.port), ("127.0.0.1", 8080));
    assert_eq!(s.server.max_body_bytes, 4 * 1024 * 1024);
    assert_eq!(s.auth.token_ttl, Duration::from_secs(86400));
    assert_eq!(s.audit.retention, Duration::from_secs(30 * 86400));
    assert_eq!(s.telemetry.protocol, TelemetryProtocol::HttpProtobuf);
    assert_eq!(s.to_redacted_json()["auth"]["token_ttl"], "24h");
    assert_eq!(
        s.auth.registration(),
        crate::config::Registration::FirstAdmin
    );
    assert_eq!(s.audit.queue_size, 10_000);
}

#[test]
fn registration_is_one_key_and_the_old_one_still_reads() {
    use crate::config::Registration;
    let s = with_env(&[("REFLOW_AUTH_REGISTRATION", "open")]).unwrap();
    assert_eq!(s.auth.registration(), Registration::Open);
    let s = load_yaml("reg.yaml", "auth:\n  allow_registration: true\n").unwrap();
    assert_eq!(s.auth.registration(), Registration::Open);
    let both = load_yaml(
        "reg2.yaml",
        "auth:\n  allow_registration: true\n  registration: closed\n",
    );
    assert!(
        error_text(both).contains("keep auth.registration"),
        "both keys set is refused"
    );
    let bad = with_env(&[("REFLOW_AUTH_REGISTRATION", "sometimes")]);
    assert!(
        error_text(bad).contains("registration"),
        "a bad value names the key"
    );
}

#[test]
fn file_overrides_defaults() {
    let yaml = "server: {port: 9000}\nauth:\n  token_ttl: 2h\n  oidc: {issuer: https://idp, audience: r}\nlogging: {format: json}\n";
    let s = load_yaml("file", yaml).unwrap();
    assert_eq!((s.server.host.as_str(), s.server.port), ("127.0.0.1", 9000));
    assert_eq!(s.auth.token_ttl, Duration::from_secs(7200));
    assert_eq!(s.logging.format, LogFormat::Json);
    let oidc = s.auth.oidc.unwrap();
    assert_eq!(
        (oidc.issuer.as_str(), oidc.role_claim.as_str()),
        ("https://idp", "role")
    );
}

#[test]
fn env_overrides_file_and_flags_override_env() {
    let path = temp_file("layers", "server:\n  port: 9000\n  host: 0.0.0.0\n");
    let vars = env(&[
        ("REFLOW_CONFIG", path.to_str().unwrap()),
        ("REFLOW_SERVER_PORT", "9100"),
        ("REFLOW_SERVER_HOST", "10.0.0.1"),
        ("REFLOW_AUTH_ALLOW_REGISTRATION", "false"),
        ("REFLOW_AUTH_OIDC_ISSUER", "https://idp"),
        ("REFLOW_AUTH_OIDC_AUDIENCE", "api"),
    ]);
    let s = Settings::load(&Overrides::default(), &vars).unwrap();
    assert_eq!((s.server.host.as_str(), s.server.port), ("10.0.0.1", 9100));
    assert_eq!(s.auth.registration(), crate::config::Registration::Closed);
    assert_eq!(s.auth.oidc.unwrap().audience, "api");

    let data_dir = Some(PathBuf::from("/srv/r"));
    let flags = Overrides {
        port: Some(0),
        data_dir,
        ..Overrides::default()
    };
    let s = Settings::load(&flags, &vars).unwrap();
    assert_eq!((s.server.host.as_str(), s.server.port), ("10.0.0.1", 0));
    assert_eq!(s.data_dir, PathBuf::from("/srv/r"));
}

#[test]
fn variables_expand_with_defaults_and_escapes() {
    let yaml = "# ${NOT_SET}\nserver:\n  host: ${HOST}\n  public_url: ${URL:-https://gw}/$$x\n";
    let s = load_yaml("expand", yaml).unwrap();
    assert_eq!(s.server.host, "0.0.0.0");
    assert_eq!(s.server.public_url.as_deref(), Some("https://gw/$x"));

    let err = load_yaml("undefined", "server:\n  host: ${MISSING_VAR}\n").unwrap_err();
    assert!(matches!(&err, ConfigError::UndefinedVariable(v) if v == "MISSING_VAR"));
    assert!(err.to_string().contains("${MISSING_VAR}"), "{err}");
}

#[test]
fn unknown_keys_name_their_path() {
    let err = error_text(load_yaml("unknown", "server:\n  prot: 1\n"));
    assert!(
        err.starts_with("unknown key \"server.prot\" in config file"),
        "{err}"
    );
    assert!(
        err.contains("(expected one of: host, port, public_url,"),
        "{err}"
    );

    let yaml = "auth:\n  oidc:\n    issuer: a\n    audience: b\n    foo: 1\n";
    let err = error_text(load_yaml("unknown-nested", yaml));
    assert!(err.starts_with("unknown key \"auth.oidc.foo\""), "{err}");
}

#[test]
fn bad_values_name_path_and_layer() {
    let err = error_text(load_yaml("badtype", "server:\n  port: lots\n"));
    assert!(err.starts_with("server.port: invalid type"), "{err}");
    assert!(err.contains("(from config file "), "{err}");

    let err = error_text(with_env(&[("REFLOW_SESSION_TIMEOUT", "soon")]));
    assert!(
        err.starts_with("session.timeout: invalid duration \"soon\""),
        "{err}"
    );
    assert!(
        err.ends_with("(from environment variable REFLOW_SESSION_TIMEOUT)"),
        "{err}"
    );

    let err = error_text(load_yaml("no-issuer", "auth:\n  oidc:\n    audience: b\n"));
    assert!(
        err.starts_with("auth.oidc: missing field `issuer`"),
        "{err}"
    );
}

#[test]
fn missing_explicit_file_names_path() {
    let config_file = Some(PathBuf::from("/nonexistent/reflow.yaml"));
    let overrides = Overrides {
        config_file,
        ..Overrides::default()
    };
    let err = error_text(Settings::load(&overrides, &env(&[])));
    assert!(err.contains("/nonexistent/reflow.yaml"), "{err}");
}

#[test]
fn zero_stdio_max_processes_rejected() {
    let err = error_text(with_env(&[("REFLOW_STDIO_MAX_PROCESSES", "0")]));
    assert!(
        err.contains("stdio.max_processes must be at least 1"),
        "{err}"
    );
}

#[test]
fn short_jwt_secret_rejected() {
    let err = error_text(with_env(&[("REFLOW_AUTH_JWT_SECRET", "short")]));
    assert!(
        err.contains("auth.jwt_secret is 5 bytes; it must be at least 32"),
        "{err}"
    );
    let long = "x".repeat(32);
    let s = with_env(&[("REFLOW_AUTH_JWT_SECRET", &long)]).unwrap();
    assert_eq!(s.auth.jwt_secret.unwrap().expose(), long);
}

#[test]
fn encryption_key_must_be_32_bytes() {
    let err = error_text(with_env(&[(
        "REFLOW_ENCRYPTION_KEY",
        &B64.encode([7u8; 16]),
    )]));
    let expected = "encryption.key must be 32 bytes, base64 or hex encoded; got 16";
    assert!(err.contains(expected), "{err}");

    let s = with_env(&[("REFLOW_ENCRYPTION_KEY", &B64.encode([7u8; 32]))]).unwrap();
    assert_eq!(s.decoded_encryption_key().unwrap(), Some([7u8; 32]));

    let mut s = Settings::default();
    assert_eq!(s.decoded_encryption_key().unwrap(), None);
    let key_file = temp_file("keyfile", &format!("{}\n", "ab".repeat(32)));
    s.encryption.key_file = Some(key_file.to_path_buf());
    assert_eq!(s.decoded_encryption_key().unwrap(), Some([0xab; 32]));
}

#[test]
fn env_lists_are_split_on_commas() {
    let origins = " https://a.example, https://b.example ,";
    let s = with_env(&[("REFLOW_SERVER_ALLOWED_ORIGINS", origins)]).unwrap();
    assert_eq!(
        s.server.allowed_origins,
        ["https://a.example", "https://b.example"]
    );
}

#[test]
fn secrets_never_appear_in_debug_or_json() {
    let jwt = "jwt-secret-value-that-is-long-enough-0123";
    let key = "cd".repeat(32);
    let database_url = Some("postgres://u:pg-password@db/r".to_string());
    let flags = Overrides {
        database_url,
        ..Overrides::default()
    };
    let vars = env(&[
        ("REFLOW_AUTH_JWT_SECRET", jwt),
        ("REFLOW_ENCRYPTION_KEY", &key),
    ]);
    let s = Settings::load(&flags, &vars).unwrap();
    assert_eq!(s.database_url(), "postgres://u:pg-password@db/r");
    for text in [format!("{s:?}"), s.to_redacted_json().to_string()] {
        let leaked = [jwt, &key, "pg-password"].iter().any(|v| text.contains(v));
        assert!(!leaked && text.contains("[redacted]"), "{text}");
    }
    assert_eq!(s.to_redacted_json()["auth"]["jwt_secret"], "[redacted]");
}

#[test]
fn database_url_defaults_into_data_dir() {
    let s = with_env(&[("REFLOW_DATA_DIR", "/var/lib/reflow")]).unwrap();
    assert_eq!(
        s.database_url(),
        "sqlite:///var/lib/reflow/reflow.db?mode=rwc"
    );
    let default = Settings::default().database_url();
    assert_eq!(default, "sqlite://./reflow-data/reflow.db?mode=rwc");
}

#[test]
fn example_file_matches_defaults() {
    let text = include_str!("../../config.example.yaml");
    assert_eq!(load_yaml("example", text).unwrap(), Settings::default());
    // Equality alone passes if a key is left out; require every defaulted key to be spelled.
    let written = parse_file(text, Path::new("example"), &env(&[])).unwrap();
    let (defaults, mut leaves) = (defaults_tree(), Vec::new());
    collect_leaves(&defaults, "", &mut leaves);
    for (path, default) in leaves.into_iter().filter(|(_, v)| !v.is_null()) {
        let found = path
            .split('.')
            .try_fold(&written, |node, seg| node.get(seg));
        assert!(
            found.is_some(),
            "config.example.yaml lacks {path} (default {default})"
        );
    }
}

#[test]
fn kubernetes_section_loads_from_file_and_env() {
    let yaml = "kubernetes:\n  enabled: true\n  namespace: mcp\n  ready_timeout: 30s\n  pod_defaults:\n    node_selector: {disktype: ssd}\n    tolerations:\n      - {key: dedicated, operator: Equal, value: mcp, effect: NoSchedule}\n    resources:\n      limits: {cpu: 500m}\n    image_pull_secrets: [regcred]\n";
    let s = load_yaml("k8s", yaml);
    if !cfg!(feature = "kubernetes") {
        let err = error_text(s);
        assert!(err.contains("without the `kubernetes` feature"), "{err}");
        return;
    }
    let s = s.unwrap();
    assert_eq!(s.kubernetes.namespace, "mcp");
    assert_eq!(s.kubernetes.ready_timeout, Duration::from_secs(30));
    let d = &s.kubernetes.pod_defaults;
    assert_eq!(d.node_selector.as_ref().unwrap()["disktype"], "ssd");
    assert_eq!(d.tolerations[0].effect.as_deref(), Some("NoSchedule"));
    // Keys not given keep their defaults, also inside a nested section.
    assert_eq!(d.resources.limits.cpu.as_deref(), Some("500m"));
    assert_eq!(d.resources.limits.memory.as_deref(), Some("512Mi"));
    assert_eq!(d.image_pull_secrets, ["regcred"]);

    let s = with_env(&[
        ("REFLOW_KUBERNETES_CONNECT", "port_forward"),
        ("REFLOW_KUBERNETES_KUBECONFIG", "/etc/reflow/kubeconfig"),
    ])
    .unwrap();
    assert_eq!(s.kubernetes.connect, Some(ConnectMode::PortForward));
    assert_eq!(
        s.kubernetes.kubeconfig.as_deref(),
        Some(std::path::Path::new("/etc/reflow/kubeconfig"))
    );
    let err = error_text(with_env(&[("REFLOW_KUBERNETES_CONNECT", "tunnel")]));
    assert!(err.starts_with("kubernetes.connect"), "{err}");
    let err = error_text(with_env(&[("REFLOW_KUBERNETES_NAMESPACE", "MCP_servers")]));
    assert!(err.contains("is not a namespace name"), "{err}");
}

#[test]
fn telemetry_protocol_and_endpoint_are_checked_by_name() {
    let err = error_text(load_yaml("telp", "telemetry:\n  protocol: bogus\n"));
    assert!(err.contains("telemetry.protocol"), "{err}");
    let err = error_text(load_yaml(
        "tele",
        "telemetry:\n  endpoint: localhost:4318\n",
    ));
    assert!(err.contains("telemetry.endpoint"), "{err}");
    let err = error_text(with_env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]));
    assert!(err.contains("OTEL_EXPORTER_OTLP_PROTOCOL"), "{err}");
    let err = error_text(load_yaml("mtok", "metrics:\n  token: short\n"));
    assert!(err.contains("metrics.token"), "{err}");
}

#[test]
fn standard_otel_variables_layer_over_the_file() {
    let s = with_env(&[]).unwrap();
    assert!(!s.telemetry.enabled);
    let s = with_env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_SERVICE_NAME", "edge-gw"),
    ])
    .unwrap();
    assert!(s.telemetry.enabled);
    assert_eq!(
        s.telemetry.endpoint.as_deref(),
        Some("http://127.0.0.1:4317")
    );
    assert_eq!(s.telemetry.protocol, TelemetryProtocol::Grpc);
    assert_eq!(s.telemetry.service_name, "edge-gw");
    let s = with_env(&[
        ("REFLOW_TELEMETRY_ENABLED", "true"),
        ("OTEL_SDK_DISABLED", "true"),
    ])
    .unwrap();
    assert!(
        !s.telemetry.enabled,
        "OTEL_SDK_DISABLED switches export off"
    );
    let s = with_env(&[("REFLOW_TELEMETRY_ENABLED", "true")]).unwrap();
    assert!(s.telemetry.enabled);
}
