//! `reflow bridge --listen ADDR -- CMD ARGS…`: serves one stdio MCP server over Streamable HTTP
//! (one child per session) until SIGINT or SIGTERM, then stops every child.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use tokio::net::TcpListener;

use super::Context;
use crate::bridge::{self, BridgeOptions};
use crate::config::Secret;
use crate::http::HostGuard;
use crate::upstream::StdioSpec;

#[derive(Args, Debug)]
pub struct BridgeArgs {
    /// Address to listen on. Loopback by default; any other address needs --token-env, since
    /// the bridge runs the server's tools for whoever reaches it.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,
    /// The endpoint path (`/health` answers probes without a token).
    #[arg(long, default_value = "/mcp", value_name = "PATH")]
    path: String,
    /// Require `Authorization: Bearer <value of this environment variable>`. The variable is
    /// not passed on to the stdio server.
    #[arg(long, value_name = "NAME")]
    token_env: Option<String>,
    /// End a session (and its process) after this long without requests or an open GET stream.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    idle_timeout: Duration,
    /// At most this many sessions (processes) at once; more `initialize`s get HTTP 503.
    #[arg(long, default_value_t = 64, value_name = "N")]
    max_sessions: usize,
    /// How long one request may wait for the stdio server's answer.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    request_timeout: Duration,
    /// Another Host name clients use for the bridge (repeatable). Loopback names are always
    /// allowed on a loopback listener; naming any host turns the check on for other listeners.
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,
    /// A browser Origin allowed besides those of the allowed hosts (repeatable).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// The stdio MCP server: a program (absolute, relative to the current directory, or found
    /// on PATH) and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

pub async fn run(ctx: Context, args: BridgeArgs) -> anyhow::Result<()> {
    // Only logging is taken from the configuration layers; the bridge needs no file or database.
    let settings = ctx.settings().unwrap_or_default();
    super::init_logging(&settings, false);
    // The child gets the bridge's environment (it is how a container configures its server),
    // less the token variable; a variable that is not UTF-8 cannot be passed and is left out.
    let mut env: BTreeMap<String, Secret> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, Secret::new(v.into_string().ok()?))))
        .collect();
    let token = match &args.token_env {
        Some(name) => {
            // The secret stays in the bridge: the child never sees it.
            let value = env.remove(name).map(|s| s.expose().to_owned());
            match value {
                Some(v) if !v.trim().is_empty() => Some(Secret::new(v.trim().to_owned())),
                _ => bail!("--token-env {name}: the environment variable {name} is unset or empty"),
            }
        }
        None => None,
    };
    let loopback = args.listen.ip().is_loopback();
    if !loopback && token.is_none() {
        bail!(
            "listening on {} (not loopback) needs --token-env: anyone who reaches the port could run the server's tools",
            args.listen
        );
    }
    if !args.path.starts_with('/') || args.path == bridge::HEALTH_PATH {
        bail!(
            "--path must start with '/' and not be {}: {:?}",
            bridge::HEALTH_PATH,
            args.path
        );
    }
    if args.max_sessions == 0 {
        bail!("--max-sessions must be at least 1");
    }
    let host_guard = (loopback || !args.allow_hosts.is_empty()).then(|| {
        let mut hosts = args.allow_hosts.clone();
        if loopback {
            hosts.extend(["localhost", "127.0.0.1", "::1"].map(String::from));
        }
        HostGuard::new(&hosts, &args.allow_origins)
    });
    let (program, rest) = args.command.split_first().expect("clap requires CMD");
    let name = std::path::Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| program.clone());
    let child = StdioSpec {
        name,
        command: program.clone(),
        args: rest.to_vec(),
        search_path: std::env::var_os("PATH")
            .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
        // The bridge's own directory: `reflow bridge -- python server.py` means ./server.py.
        cwd: Some(std::env::current_dir().context("the current directory")?),
        redact: token.iter().cloned().collect(),
        env,
        timeout: args.request_timeout,
        max_message: crate::upstream::limits::MAX_MESSAGE,
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    // On stdout, one line, for scripts and tests that listen on port 0.
    println!("reflow bridge listening on http://{local}{}", args.path);
    tracing::info!(address = %local, command = %program, "reflow bridge listening");
    let options = BridgeOptions {
        child,
        path: args.path,
        token,
        host_guard,
        idle_timeout: args.idle_timeout,
        max_sessions: args.max_sessions,
        request_timeout: args.request_timeout,
    };
    bridge::serve(listener, options, super::serve::shutdown_signal()).await?;
    Ok(())
}
