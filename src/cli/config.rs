//! `reflow config check`: validates the layered configuration and prints effective values.

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{Context, output};

#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Validate the configuration and print the effective values (secrets redacted).
    Check,
}

pub fn run(ctx: &Context, args: ConfigArgs) -> anyhow::Result<()> {
    match args.command {
        ConfigCommand::Check => {
            let settings = ctx.settings()?;
            let mut values = settings.to_redacted_json();
            if let Some(db) = values.get_mut("database") {
                db["effective_url"] =
                    Value::String(crate::store::redact_url(&settings.database_url()));
            }
            if ctx.json {
                return output::json(&values);
            }
            let mut lines = Vec::new();
            flatten("", &values, &mut lines);
            for (k, v) in lines {
                println!("{k} = {v}");
            }
            eprintln!("configuration is valid");
            Ok(())
        }
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => out.push((prefix.to_string(), other.to_string())),
    }
}
