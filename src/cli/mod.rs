//! The command line: global options, one module per subcommand group, and error → exit code.

mod bridge;
mod completions;
mod config;
mod db;
mod logs;
mod output;
mod policy;
mod policy_explain;
mod probe;
mod secret;
mod serve;
mod target;
mod target_test;
mod token;
mod user;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Overrides, Settings};

#[derive(Parser, Debug)]
#[command(
    name = "reflow",
    version,
    about = "An MCP gateway: one endpoint for many MCP servers, with authentication, policies and audit",
    propagate_version = true
)]
pub struct Cli {
    /// Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory for the SQLite database and generated secrets (default ./reflow-data).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config).
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway: MCP endpoint, admin API and health checks on one port.
    Serve(serve::ServeArgs),
    /// Manage user accounts.
    User(user::UserArgs),
    /// Manage targets: the upstream MCP servers behind the gateway.
    Target(target::TargetArgs),
    /// Manage access policies: who may use which tools, resources and prompts.
    Policy(policy::PolicyArgs),
    /// Manage API tokens for MCP clients.
    Token(token::TokenArgs),
    /// Manage upstream credentials: target tokens and env entries, and key rotation.
    Secret(secret::SecretArgs),
    /// Show the audit log: who called what, and the policy decision.
    Logs(logs::LogsArgs),
    /// Database migrations.
    Db(db::DbArgs),
    /// Inspect the configuration.
    Config(config::ConfigArgs),
    /// Print a shell completion script.
    Completions(completions::CompletionsArgs),
    /// Serve one stdio MCP server over Streamable HTTP (one process per session).
    Bridge(bridge::BridgeArgs),
    /// Connect to one HTTP MCP upstream, list what it serves, optionally call a tool.
    #[command(hide = true)]
    Probe(probe::ProbeArgs),
}

/// What every subcommand gets: the global options, and the environment to layer config from.
pub struct Context {
    overrides: Overrides,
    env: BTreeMap<String, String>,
    pub json: bool,
}

impl Context {
    pub fn settings(&self) -> anyhow::Result<Settings> {
        Ok(Settings::load(&self.overrides, &self.env)?)
    }
}

pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Parses arguments, runs the command, and maps failure to exit code 1 (clap uses 2 for usage).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = Context {
        overrides: Overrides {
            config_file: cli.config,
            data_dir: cli.data_dir,
            database_url: cli.database_url,
            ..Overrides::default()
        },
        env: std::env::vars().collect(),
        json: cli.json,
    };
    let result = match cli.command {
        Command::Completions(args) => completions::run(args),
        Command::Config(args) => config::run(&ctx, args),
        command => runtime().and_then(|rt| {
            rt.block_on(async move {
                match command {
                    Command::Serve(args) => serve::run(ctx, args).await,
                    Command::User(args) => user::run(&ctx, args).await,
                    Command::Target(args) => target::run(&ctx, args).await,
                    Command::Policy(args) => policy::run(&ctx, args).await,
                    Command::Token(args) => token::run(&ctx, args).await,
                    Command::Secret(args) => secret::run(&ctx, args).await,
                    Command::Db(args) => db::run(&ctx, args).await,
                    Command::Logs(args) => logs::run(&ctx, args).await,
                    Command::Probe(args) => probe::run(&ctx, args).await,
                    Command::Bridge(args) => bridge::run(ctx, args).await,
                    Command::Completions(_) | Command::Config(_) => unreachable!("handled above"),
                }
            })
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Logging for admin commands: warnings only, on stderr; nothing exported.
pub fn init_logging(settings: &Settings, quiet: bool) {
    let _ = crate::telemetry::install(settings, quiet, false);
}
