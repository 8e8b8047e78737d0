//! `reflow user …`: account administration straight on the configured database.

use std::io::{BufRead, IsTerminal};

use clap::{Args, Subcommand};

use super::{Context, output};
use crate::app::open_store;
use crate::domain::UserId;
use crate::service::{TokenService, UserService, UserView};

#[derive(Args, Debug)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create an account. The password is prompted for, or read from stdin with --password-stdin.
    Add {
        email: String,
        /// Role: admin, user, or any role your policies name.
        #[arg(long, default_value = "user")]
        role: String,
        /// Group membership; repeat or separate with commas.
        #[arg(long = "group", value_delimiter = ',')]
        groups: Vec<String>,
        /// Read the password from the first line of stdin (for scripts).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List,
    /// Show one account (by email or id) and its API tokens.
    Show { user: String },
    /// Change an account's role.
    SetRole { user: String, role: String },
    /// Replace an account's groups (none given: no groups).
    SetGroups {
        user: String,
        #[arg(value_delimiter = ',')]
        groups: Vec<String>,
    },
    /// Set a new password (prompted, or --password-stdin).
    Passwd {
        user: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete an account and its API tokens.
    Remove { user: String },
    /// End an account's MCP sessions (by email or id); its clients initialize again.
    Recycle { user: String },
}

pub async fn run(ctx: &Context, args: UserArgs) -> anyhow::Result<()> {
    let settings = ctx.settings()?;
    super::init_logging(&settings, true);
    let store = open_store(&settings).await?;
    let users = UserService::new(store.clone());
    let result = match args.command {
        UserCommand::Add {
            email,
            role,
            groups,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            let user = users.create(&email, &password, &role, &groups).await?;
            print_user(ctx, &UserView::from(&user), "created")
        }
        UserCommand::List => {
            let list: Vec<UserView> = users.list().await?.iter().map(UserView::from).collect();
            if ctx.json {
                output::json(&list)
            } else {
                output::table(
                    &["EMAIL", "ROLE", "GROUPS", "CREATED", "ID"],
                    list.iter()
                        .map(|u| {
                            vec![
                                u.email.to_string(),
                                u.role.to_string(),
                                join(&u.groups),
                                output::time(&u.created_at),
                                u.id.to_string(),
                            ]
                        })
                        .collect(),
                );
                Ok(())
            }
        }
        UserCommand::Show { user } => {
            let user = users.find(&user).await?;
            let tokens = TokenService::new(store.clone()).list(Some(user.id)).await?;
            if ctx.json {
                let mut v = serde_json::to_value(UserView::from(&user))?;
                v["tokens"] = serde_json::to_value(
                    tokens
                        .iter()
                        .map(crate::service::TokenView::from)
                        .collect::<Vec<_>>(),
                )?;
                output::json(&v)
            } else {
                let active = tokens.iter().filter(|t| t.revoked_at.is_none()).count();
                output::fields(&[
                    ("id", user.id.to_string()),
                    ("email", user.email.to_string()),
                    ("role", user.role.to_string()),
                    ("groups", join(&user.groups)),
                    ("created", output::time(&user.created_at)),
                    ("updated", output::time(&user.updated_at)),
                    (
                        "api tokens",
                        format!("{active} active, {} revoked", tokens.len() - active),
                    ),
                ]);
                Ok(())
            }
        }
        UserCommand::SetRole { user, role } => {
            let id = users.find(&user).await?.id;
            let user = users.update(id, Some(&role), None).await?;
            print_user(ctx, &UserView::from(&user), "updated")
        }
        UserCommand::SetGroups { user, groups } => {
            let id = users.find(&user).await?.id;
            let user = users.update(id, None, Some(&groups)).await?;
            print_user(ctx, &UserView::from(&user), "updated")
        }
        UserCommand::Passwd {
            user,
            password_stdin,
        } => {
            let user = users.find(&user).await?;
            let password = read_password(password_stdin)?;
            users.set_password(user.id, &password).await?;
            if !ctx.json {
                println!("password changed for {}", user.email);
            }
            Ok(())
        }
        UserCommand::Remove { user } => {
            let user = users.find(&user).await?;
            let removed = users.remove(user.id).await?;
            if ctx.json {
                output::json(&serde_json::json!({
                    "removed": user.id,
                    "credentials": removed.credentials,
                    "tokens": removed.tokens,
                    "sessions": removed.sessions,
                }))
            } else {
                println!(
                    "removed {} ({}) with {} user-scope credential(s), {} API token(s) and {} open session(s)",
                    user.email, user.id, removed.credentials, removed.tokens, removed.sessions
                );
                Ok(())
            }
        }
        UserCommand::Recycle { user } => {
            // By email or id; an id need not be an account (external OIDC users have none).
            let (id, label) = match users.find(&user).await {
                Ok(u) => (u.id, u.email.to_string()),
                Err(e) => match user.parse::<UserId>() {
                    Ok(id) => (id, id.to_string()),
                    Err(_) => return Err(e.into()),
                },
            };
            // No server here: end the stored sessions, then bump the revision so running
            // servers notice and end their in-memory copies (`Gateway::reload`).
            let n = store.end_user_sessions(id, chrono::Utc::now()).await?;
            store.bump_revision().await?;
            if ctx.json {
                output::json(&serde_json::json!({ "recycled": n, "user_id": id }))
            } else {
                println!("recycled {n} session(s) of {label}");
                Ok(())
            }
        }
    };
    store.close().await;
    result
}

fn print_user(ctx: &Context, user: &UserView, verb: &str) -> anyhow::Result<()> {
    if ctx.json {
        return output::json(user);
    }
    println!(
        "{verb} {} (role {}, groups [{}], id {})",
        user.email,
        user.role,
        join(&user.groups),
        user.id
    );
    Ok(())
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Passwords never come from argv (visible in `ps` and shell history).
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let password = line.trim_end_matches(['\n', '\r']).to_string();
        anyhow::ensure!(!password.is_empty(), "no password on stdin");
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("no terminal to prompt for a password: pipe it in with --password-stdin");
    }
    let first = rpassword::prompt_password("Password: ")?;
    let second = rpassword::prompt_password("Repeat password: ")?;
    anyhow::ensure!(first == second, "the passwords do not match");
    Ok(first)
}
