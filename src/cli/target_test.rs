//! `reflow target test NAME`: connects to a target as the gateway would (with the credentials
//! of the default scope) and reports what it offers, or exactly why it cannot be reached.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use super::{Context, output};
use crate::credentials::CredentialSnapshot;
use crate::store::{Store, TargetRecord};
use crate::upstream::probe;
use crate::upstream::{UpstreamError, UpstreamSpec};

/// The default scope's credentials for `target`: its headers and, if BASE_URL is set, the URL.
async fn default_credentials(
    ctx: &Context,
    store: &Store,
    target: &TargetRecord,
) -> anyhow::Result<(reqwest::header::HeaderMap, Option<url::Url>)> {
    let secrets = crate::app::Secrets::load_or_generate(&ctx.settings()?)?;
    let sealer = crate::crypto::SecretBox::new(&secrets.encryption_key);
    let snapshot = CredentialSnapshot::load(store, &sealer).await?;
    let resolved = snapshot.resolve_default(target.id);
    let headers = crate::credentials::http_headers(
        &resolved,
        target.auth_type,
        target.auth_header_name.as_deref(),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}: `target test` uses the default scope; set it with `reflow secret set {} --default`",
            target.name
        )
    })?;
    let base = match resolved.base_url() {
        Some(b) => Some(b.parse().map_err(|_| {
            anyhow::anyhow!("the default BASE_URL of {} is not a URL", target.name)
        })?),
        None => None,
    };
    Ok((headers, base))
}

pub async fn run(ctx: &Context, store: &Store, target: &TargetRecord) -> anyhow::Result<()> {
    anyhow::ensure!(
        target.transport.is_http(),
        "target {} uses the {} transport; `target test` can reach streamable-http and sse targets",
        target.name,
        target.transport
    );
    let (headers, base_url) = default_credentials(ctx, store, target).await?;
    let url: url::Url = match base_url {
        Some(u) => u,
        None => target
            .url
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("target {} has no url", target.name))?
            .parse()?,
    };
    let timeout = target.timeout.unwrap_or(Duration::from_secs(30));
    let spinner = if std::io::stderr().is_terminal() && !ctx.json {
        let pb = ProgressBar::new_spinner();
        pb.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("static template"));
        pb.enable_steady_tick(Duration::from_millis(100));
        pb
    } else {
        ProgressBar::hidden()
    };
    spinner.set_message(format!("connecting to {} ({url})", target.name));
    let spec = UpstreamSpec {
        name: target.name.to_string(),
        url: url.clone(),
        transport: probe::transport_for(target.transport),
        headers,
        timeout,
        max_message: ctx.settings()?.gateway.max_upstream_message,
    };
    let probed = probe::probe(spec).await;
    spinner.finish_and_clear();
    let probed = match probed {
        Ok(p) => p,
        Err(UpstreamError::Timeout) => anyhow::bail!(
            "{} ({url}) did not answer the era probe (server/discover, initialize) within {timeout:?}",
            target.name
        ),
        Err(e) => anyhow::bail!("{} ({url}) failed: {e}", target.name),
    };
    let report = probed.summary(target.name.as_str(), &url);
    let info = &probed.server;
    let counts = &report["counts"];
    if ctx.json {
        return output::json(&report);
    }
    let server = format!(
        "{} {}",
        info.server_info
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("?"),
        info.server_info
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or("")
    );
    output::fields(&[
        ("target", target.name.to_string()),
        ("url", url.to_string()),
        (
            "era",
            format!("{}, protocol {}", info.era(), info.protocol_version),
        ),
        ("transport", info.transport.as_str().to_string()),
        ("server", server.trim().to_string()),
        ("tools", counts["tools"].to_string()),
        ("resources", counts["resources"].to_string()),
        ("prompts", counts["prompts"].to_string()),
    ]);
    Ok(())
}
