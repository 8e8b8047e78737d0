//! `reflow db migrate|status`.

use clap::{Args, Subcommand};

use super::{Context, output};
use crate::store::Store;

#[derive(Args, Debug)]
pub struct DbArgs {
    #[command(subcommand)]
    command: DbCommand,
}

#[derive(Subcommand, Debug)]
enum DbCommand {
    /// Apply pending migrations (serve and every admin command also do this).
    Migrate,
    /// Show each migration and when it was applied.
    Status,
}

pub async fn run(ctx: &Context, args: DbArgs) -> anyhow::Result<()> {
    let settings = ctx.settings()?;
    super::init_logging(&settings, true);
    let url = settings.database_url();
    let store = Store::connect(&url, 2).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot open database {}: {e}",
            crate::store::redact_url(&url)
        )
    })?;
    if matches!(args.command, DbCommand::Migrate) {
        store.migrate().await?;
    }
    let status = store.migration_status().await?;
    store.close().await;
    if ctx.json {
        return output::json(&status);
    }
    output::table(
        &["VERSION", "DESCRIPTION", "APPLIED"],
        status
            .iter()
            .map(|m| {
                vec![
                    format!("{:04}", m.version),
                    m.description.clone(),
                    output::opt_time(&m.applied_at, "pending"),
                ]
            })
            .collect(),
    );
    Ok(())
}
