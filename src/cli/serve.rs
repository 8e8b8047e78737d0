//! `reflow serve`: binds the listener and runs the gateway until SIGINT or SIGTERM.

use clap::Args;
use tokio::net::TcpListener;

use super::Context;
use crate::app::App;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to bind (default 127.0.0.1; use 0.0.0.0 to accept remote clients).
    #[arg(long)]
    host: Option<String>,
    /// Port to bind (default 8080; 0 picks a free one).
    #[arg(long, short = 'p')]
    port: Option<u16>,
}

pub async fn run(mut ctx: Context, args: ServeArgs) -> anyhow::Result<()> {
    ctx.overrides.host = args.host;
    ctx.overrides.port = args.port;
    let settings = ctx.settings()?;
    let tracing = crate::telemetry::install(&settings, false, true)?;
    if tracing.exporting() {
        tracing::info!(endpoint = ?settings.telemetry.exporter_endpoint(), protocol = ?settings.telemetry.protocol, "exporting traces over OTLP");
    }
    let addr = format!("{}:{}", settings.server.host, settings.server.port);
    let grace = settings.server.shutdown_grace;
    let app = App::build_with(settings, tracing.clone()).await?;
    let listener = TcpListener::bind(&addr).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {addr}: {e} (choose another with --port)")
    })?;
    let local = listener.local_addr()?;
    crate::heap::release_free_memory();
    tracing::info!(address = %local, "reflow listening; MCP endpoint http://{local}/mcp");
    tracing::info!("web UI: http://{local}/ (API reference: http://{local}/docs)");
    match app.state().users.list().await {
        Ok(users) if users.is_empty() => tracing::info!(
            "no user exists yet: open http://{local}/ to create the first admin, or run `reflow user add EMAIL --role admin`"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot count users"),
    }
    let served = app.serve(listener, shutdown_signal()).await;
    tracing.shutdown(grace).await;
    served
}

pub(super) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
