//! `reflow target …`: target administration straight on the configured database.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::{Context, output};
use crate::app::open_store;
use crate::service::{TargetInput, TargetService, TargetView};
use crate::store::TargetRecord;

#[derive(Args, Debug)]
pub struct TargetArgs {
    #[command(subcommand)]
    command: TargetCommand,
}

#[derive(Subcommand, Debug)]
enum TargetCommand {
    /// Add a target: `--url URL` for HTTP, or `--stdio -- COMMAND ARGS...` for a local process.
    Add(Box<AddArgs>),
    /// List targets.
    List,
    /// Show one target (by name or id).
    Show { target: String },
    /// Change the given settings of a target; others stay as they are.
    Update(Box<UpdateArgs>),
    /// Delete a target with its policies and stored credentials.
    Remove { target: String },
    /// Route traffic to a target again.
    Enable { target: String },
    /// Stop routing to a target without deleting it.
    Disable { target: String },
    /// Connect to a target (with the default scope's credentials) and report its era,
    /// protocol version, server and what it offers.
    Test { target: String },
    /// List a stdio target's processes (every replica's, as recorded), live ones first.
    Instances { target: String },
    /// Stop a stdio or kubernetes target's processes or pods on every replica; for an HTTP
    /// target, drop every replica's upstream sessions and connections to it. The next use
    /// starts them again.
    Restart { target: String },
}

/// Settings shared by `add` and `update` (boxed in the enum: they are large).
#[derive(Args, Debug)]
struct FieldArgs {
    /// Upstream MCP endpoint (http or https).
    #[arg(long)]
    url: Option<String>,
    /// streamable-http, sse, stdio or kubernetes.
    #[arg(long)]
    transport: Option<String>,
    /// Tool name prefix ('' = unprefixed; default: the target name).
    #[arg(long)]
    prefix: Option<String>,
    /// Per-request timeout, e.g. 30s or 2m (1 s to 1 h).
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// stateless or stateful.
    #[arg(long)]
    statefulness: Option<String>,
    /// Who shares a stdio process or pod: shared, per_role, per_group or per_user.
    #[arg(long)]
    isolation: Option<String>,
    /// none, bearer or header.
    #[arg(long)]
    auth_type: Option<String>,
    /// The header carrying the token when --auth-type header.
    #[arg(long)]
    auth_header_name: Option<String>,
    /// Working directory of a stdio process.
    #[arg(long)]
    cwd: Option<String>,
    /// Container image of a kubernetes target.
    #[arg(long)]
    image: Option<String>,
    /// Container port of a kubernetes target.
    #[arg(long)]
    port: Option<i64>,
    /// Readiness path of a kubernetes target.
    #[arg(long)]
    health_path: Option<String>,
    /// A tag; repeat for several. On update, replaces all tags.
    #[arg(long = "tag")]
    tags: Option<Vec<String>>,
    /// Non-secret environment entry KEY=VALUE; repeat for several. On update, replaces all.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Option<Vec<String>>,
    /// An env key users may set for themselves (`reflow secret set --user`, or their own
    /// user scope in the API); repeat for several. On update, replaces all. Admins may set any
    /// key; the deny-list (LD_*, NODE_OPTIONS, PATH, ...) binds everyone.
    #[arg(long = "user-env", value_name = "KEY")]
    user_env: Option<Vec<String>>,
    /// Clear the env keys users may set.
    #[arg(long, conflicts_with = "user_env")]
    no_user_env: bool,
    /// Whether users may set their own token for this target (true or false).
    #[arg(long, value_name = "BOOL")]
    user_token: Option<bool>,
    /// A kubernetes target's pod resource request NAME=QUANTITY (cpu, memory,
    /// ephemeral-storage); repeat for several. On update, --request and --limit replace both.
    #[arg(long = "request", value_name = "NAME=QUANTITY")]
    requests: Option<Vec<String>>,
    /// A kubernetes target's pod resource limit NAME=QUANTITY; repeat for several.
    #[arg(long = "limit", value_name = "NAME=QUANTITY")]
    limits: Option<Vec<String>>,
}

#[derive(Args, Debug)]
struct AddArgs {
    name: String,
    #[command(flatten)]
    fields: FieldArgs,
    /// A local process speaking MCP on stdin/stdout; give the command after `--`.
    #[arg(long, conflicts_with_all = ["url", "transport"])]
    stdio: bool,
    /// Create the target disabled.
    #[arg(long)]
    disabled: bool,
    /// The stdio command and its arguments, after `--` (kept exactly, even if they start with '-').
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Args, Debug)]
struct UpdateArgs {
    target: String,
    /// Rename the target.
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    fields: FieldArgs,
    /// Reset the prefix to the target name.
    #[arg(long, conflicts_with = "prefix")]
    clear_prefix: bool,
    /// Replace the stdio command and its arguments (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

impl FieldArgs {
    fn into_input(self) -> anyhow::Result<TargetInput> {
        let pairs = |what: &str, list: Option<Vec<String>>| -> anyhow::Result<_> {
            let Some(list) = list else { return Ok(None) };
            let mut map = BTreeMap::new();
            for pair in list {
                let Some((k, v)) = pair.split_once('=') else {
                    anyhow::bail!("{what}: {pair:?} is not KEY=VALUE");
                };
                map.insert(k.to_string(), v.to_string());
            }
            Ok(Some(map))
        };
        let env = pairs("env", self.env)?;
        let resources = match (
            pairs("request", self.requests)?,
            pairs("limit", self.limits)?,
        ) {
            (None, None) => None,
            (requests, limits) => Some(crate::domain::TargetResources {
                requests: requests.unwrap_or_default(),
                limits: limits.unwrap_or_default(),
            }),
        };
        Ok(TargetInput {
            url: self.url.map(Some),
            transport_type: self.transport,
            prefix: self.prefix.map(Some),
            timeout: self.timeout.map(Some),
            statefulness: self.statefulness,
            isolation_boundary: self.isolation,
            auth_type: self.auth_type,
            auth_header_name: self.auth_header_name.map(Some),
            cwd: self.cwd.map(Some),
            image: self.image.map(Some),
            port: self.port.map(Some),
            health_path: self.health_path.map(Some),
            tags: self.tags,
            env,
            user_env: if self.no_user_env {
                Some(Vec::new())
            } else {
                self.user_env
            },
            user_token: self.user_token,
            resources,
            ..TargetInput::default()
        })
    }
}

/// Splits `COMMAND ARGS...` into the input's command and args; nothing given: unchanged.
fn set_command(input: &mut TargetInput, mut command: Vec<String>) {
    if command.is_empty() {
        return;
    }
    let program = command.remove(0);
    input.command = Some(Some(program));
    input.args = Some(command);
}

pub async fn run(ctx: &Context, args: TargetArgs) -> anyhow::Result<()> {
    let settings = ctx.settings()?;
    super::init_logging(&settings, true);
    let store = open_store(&settings).await?;
    let targets = TargetService::new(store.clone());
    let result = run_command(ctx, &targets, &store, args.command).await;
    store.close().await;
    result
}

async fn run_command(
    ctx: &Context,
    targets: &TargetService,
    store: &crate::store::Store,
    command: TargetCommand,
) -> anyhow::Result<()> {
    match command {
        TargetCommand::Instances { target } => {
            let t = stdio_target(targets, &target).await?;
            let rows = store.list_instances(t.id).await?;
            if ctx.json {
                return output::json(&rows);
            }
            output::table(
                &[
                    "ID",
                    "KEY",
                    "PID / POD",
                    "STATUS",
                    "STARTED",
                    "LAST USED",
                    "STOPPED",
                    "REPLICA",
                ],
                rows.iter()
                    .map(|r| {
                        vec![
                            r.id.to_string(),
                            r.isolation_key.clone(),
                            match (&r.pod, r.pid) {
                                (Some(pod), _) => pod.clone(),
                                (None, Some(p)) => p.to_string(),
                                (None, None) => "-".into(),
                            },
                            r.status.to_string(),
                            output::time(&r.started_at),
                            output::time(&r.last_used_at),
                            r.stopped_at.as_ref().map_or("-".into(), output::time),
                            r.replica.clone(),
                        ]
                    })
                    .collect(),
            );
            Ok(())
        }
        TargetCommand::Restart { target } => {
            let t = targets.find(&target).await?;
            if !t.transport.runs_instances() {
                // Running servers see the target changed and drop its connections.
                store.restart_target(t.id).await?;
                if ctx.json {
                    return output::json(&serde_json::json!({
                        "target": t.name, "stopped": 0, "connections": "dropped"
                    }));
                }
                println!(
                    "every server drops its upstream sessions and connections to {}; the next call opens new ones",
                    t.name
                );
                return Ok(());
            }
            // The serving process sees the revision move and stops the marked processes.
            let n = store.request_instance_stop(t.id).await?;
            if ctx.json {
                return output::json(&serde_json::json!({ "target": t.name, "stopped": n }));
            }
            println!(
                "asked {n} running instance(s) of {} to stop; the next use starts them again",
                t.name
            );
            Ok(())
        }
        TargetCommand::Add(add) => {
            let mut input = add.fields.into_input()?;
            input.name = Some(add.name);
            if add.stdio {
                input.transport_type = Some("stdio".into());
            }
            if add.disabled {
                input.enabled = Some(false);
            }
            set_command(&mut input, add.command);
            let target = targets.create(input).await?;
            print_target(ctx, &target, "created")
        }
        TargetCommand::Test { target } => {
            let target = targets.find(&target).await?;
            super::target_test::run(ctx, store, &target).await
        }
        TargetCommand::List => {
            let list = targets.list().await?;
            if ctx.json {
                return output::json(&list.iter().map(TargetView::from).collect::<Vec<_>>());
            }
            output::table(
                &["NAME", "TRANSPORT", "URL/COMMAND", "PREFIX", "ENABLED"],
                list.iter()
                    .map(|t| {
                        vec![
                            t.name.to_string(),
                            t.transport.to_string(),
                            endpoint(t),
                            prefix(t),
                            if t.enabled { "yes" } else { "no" }.to_string(),
                        ]
                    })
                    .collect(),
            );
            Ok(())
        }
        TargetCommand::Show { target } => {
            let t = targets.find(&target).await?;
            if ctx.json {
                return output::json(&TargetView::from(&t));
            }
            let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            output::fields(&[
                ("id", t.id.to_string()),
                ("name", t.name.to_string()),
                ("transport", t.transport.to_string()),
                ("endpoint", endpoint(&t)),
                ("cwd", opt(&t.cwd)),
                ("image", opt(&t.image)),
                ("port", t.port.map_or("-".into(), |p| p.to_string())),
                ("health path", opt(&t.health_path)),
                ("statefulness", t.statefulness.to_string()),
                ("isolation", t.isolation_boundary.to_string()),
                ("auth", auth(&t)),
                ("enabled", t.enabled.to_string()),
                ("prefix", prefix(&t)),
                (
                    "timeout",
                    t.timeout.map_or("default".into(), |d| {
                        humantime::format_duration(d).to_string()
                    }),
                ),
                (
                    "env keys",
                    t.env.keys().cloned().collect::<Vec<_>>().join(","),
                ),
                ("tags", t.tags.join(",")),
                ("user env keys", t.user_env.join(",")),
                ("user token", t.user_token.to_string()),
                ("resources", resources_text(&t.resources)),
                ("created", output::time(&t.created_at)),
                ("updated", output::time(&t.updated_at)),
            ]);
            Ok(())
        }
        TargetCommand::Update(up) => {
            let id = targets.find(&up.target).await?.id;
            let mut input = up.fields.into_input()?;
            input.name = up.name;
            if up.clear_prefix {
                input.prefix = Some(None);
            }
            set_command(&mut input, up.command);
            let target = targets.update(id, input).await?;
            print_target(ctx, &target, "updated")
        }
        TargetCommand::Remove { target } => {
            let t = targets.find(&target).await?;
            targets.remove(t.id).await?;
            if ctx.json {
                output::json(&serde_json::json!({ "removed": t.id }))
            } else {
                println!("removed target {} ({})", t.name, t.id);
                Ok(())
            }
        }
        TargetCommand::Enable { target } => {
            let id = targets.find(&target).await?.id;
            print_target(ctx, &targets.set_enabled(id, true).await?, "enabled")
        }
        TargetCommand::Disable { target } => {
            let id = targets.find(&target).await?.id;
            print_target(ctx, &targets.set_enabled(id, false).await?, "disabled")
        }
    }
}

async fn stdio_target(targets: &TargetService, key: &str) -> anyhow::Result<TargetRecord> {
    let t = targets.find(key).await?;
    if !t.transport.runs_instances() {
        anyhow::bail!(
            "target {} is a {} target; only stdio and kubernetes targets have instances (processes, pods)",
            t.name,
            t.transport
        );
    }
    Ok(t)
}

fn print_target(ctx: &Context, t: &TargetRecord, verb: &str) -> anyhow::Result<()> {
    if ctx.json {
        return output::json(&TargetView::from(t));
    }
    println!(
        "{verb} target {} ({}, {}, {}, id {})",
        t.name,
        t.transport,
        endpoint(t),
        if t.enabled { "enabled" } else { "disabled" },
        t.id
    );
    Ok(())
}

/// The URL of an HTTP target, or the command line of a stdio one.
fn endpoint(t: &TargetRecord) -> String {
    match (&t.url, &t.command, &t.image) {
        (Some(url), _, _) => url.clone(),
        (None, Some(cmd), _) => std::iter::once(cmd.as_str())
            .chain(t.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        (None, None, Some(image)) => image.clone(),
        (None, None, None) => "-".into(),
    }
}

fn prefix(t: &TargetRecord) -> String {
    match t.effective_prefix() {
        "" => "(none)".into(),
        p => p.to_string(),
    }
}

fn auth(t: &TargetRecord) -> String {
    match &t.auth_header_name {
        Some(h) => format!("{} ({h})", t.auth_type),
        None => t.auth_type.to_string(),
    }
}

/// `requests cpu=100m; limits memory=1Gi`, or `-`.
fn resources_text(r: &crate::domain::TargetResources) -> String {
    let part = |kind: &str, m: &BTreeMap<String, String>| {
        (!m.is_empty()).then(|| {
            let items: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{kind} {}", items.join(" "))
        })
    };
    let parts: Vec<String> = [part("requests", &r.requests), part("limits", &r.limits)]
        .into_iter()
        .flatten()
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join("; ")
    }
}
