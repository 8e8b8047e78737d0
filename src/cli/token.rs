//! `reflow token …`: API tokens for MCP clients, created and revoked on the database directly.

use clap::{Args, Subcommand};
use serde_json::json;

use super::{Context, output};
use crate::app::{Secrets, open_store};
use crate::auth::{JwtKeys, sign_api_token};
use crate::domain::ApiTokenId;
use crate::service::{TokenService, TokenView, UserService};

#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create a token for a user; it is printed once, with a client config snippet.
    Create {
        /// The owner, by email or id.
        #[arg(long)]
        user: String,
        /// A label, e.g. the client it is for.
        #[arg(long)]
        name: String,
        /// Lifetime such as 30d or 12h (default: until revoked).
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<std::time::Duration>,
    },
    /// List tokens (all users', or one user's with --user).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by id; effective immediately on every server.
    Revoke { id: String },
}

pub async fn run(ctx: &Context, args: TokenArgs) -> anyhow::Result<()> {
    let settings = ctx.settings()?;
    super::init_logging(&settings, true);
    let store = open_store(&settings).await?;
    let users = UserService::new(store.clone());
    let tokens = TokenService::new(store.clone());
    let result = async {
        match args.command {
            TokenCommand::Create {
                user,
                name,
                expires_in,
            } => {
                let user = users.find(&user).await?;
                let secrets = Secrets::load_or_generate(&settings)?;
                let record = tokens.create(user.id, &name, expires_in).await?;
                let token = sign_api_token(&JwtKeys::new(&secrets.jwt), &user, &record);
                if ctx.json {
                    return output::json(
                        &json!({ "api_token": TokenView::from(&record), "token": token }),
                    );
                }
                let base = settings.server.public_url.clone().unwrap_or_else(|| {
                    format!("http://{}:{}", settings.server.host, settings.server.port)
                });
                let snippet = json!({ "mcpServers": { "reflow": {
                    "type": "http",
                    "url": format!("{}/mcp", base.trim_end_matches('/')),
                    "headers": { "Authorization": format!("Bearer {token}") },
                }}});
                println!(
                    "Created token {:?} for {} (id {}).",
                    record.name.as_str(),
                    user.email,
                    record.id
                );
                if let Some(exp) = record.expires_at {
                    println!("It expires at {}.", output::time(&exp));
                }
                println!("This is the only time it is shown:\n\n{token}\n");
                println!(
                    "MCP client configuration:\n{}",
                    serde_json::to_string_pretty(&snippet)?
                );
                Ok(())
            }
            TokenCommand::List { user } => {
                let owner = match user {
                    Some(u) => Some(users.find(&u).await?.id),
                    None => None,
                };
                let all = users.list().await?;
                let list = tokens.list(owner).await?;
                if ctx.json {
                    return output::json(&list.iter().map(TokenView::from).collect::<Vec<_>>());
                }
                let email = |id| {
                    all.iter()
                        .find(|u| u.id == id)
                        .map(|u| u.email.to_string())
                        .unwrap_or_default()
                };
                output::table(
                    &["ID", "NAME", "USER", "CREATED", "EXPIRES", "STATUS"],
                    list.iter()
                        .map(|t| {
                            vec![
                                t.id.to_string(),
                                t.name.as_str().to_string(),
                                email(t.user_id),
                                output::time(&t.created_at),
                                output::opt_time(&t.expires_at, "never"),
                                match (&t.revoked_at, &t.expires_at) {
                                    (Some(_), _) => "revoked".to_string(),
                                    (None, Some(e)) if *e <= chrono::Utc::now() => {
                                        "expired".to_string()
                                    }
                                    _ => "active".to_string(),
                                },
                            ]
                        })
                        .collect(),
                );
                Ok(())
            }
            TokenCommand::Revoke { id } => {
                let id: ApiTokenId = id.parse().map_err(|_| {
                    anyhow::anyhow!("{id:?} is not a token id (see `reflow token list`)")
                })?;
                let record = tokens.revoke(id, None).await?;
                if ctx.json {
                    return output::json(&TokenView::from(&record));
                }
                println!("revoked token {} ({:?})", record.id, record.name.as_str());
                Ok(())
            }
        }
    }
    .await;
    store.close().await;
    result
}
