//! `reflow secret …`: upstream tokens and env entries straight on the configured database,
//! and re-encryption of every stored value under a new key.
//!
//! Values never come from argv (visible in `ps` and shell history) and are never printed.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use base64::Engine as _;
use clap::{ArgGroup, Args, Subcommand};

use super::{Context, output};
use crate::app::{Secrets, open_store};
use crate::credentials::seal_context;
use crate::crypto::{KeyId, Keyring, SecretBox};
use crate::domain::{CredentialKind, CredentialScope};
use crate::service::{CredentialEntry, CredentialService, ScopeRef, TargetService, Writer};
use crate::store::Store;

#[derive(Args, Debug)]
pub struct SecretArgs {
    #[command(subcommand)]
    command: SecretCommand,
}

/// Whom a value is for; none given means the target's default.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("scope").args(["user", "group", "role", "default"])))]
struct ScopeArgs {
    /// For one user (email or id); wins over group, role and default.
    #[arg(long, value_name = "EMAIL")]
    user: Option<String>,
    /// For members of a group; groups are tried in name order.
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// For users with a role.
    #[arg(long, value_name = "ROLE")]
    role: Option<String>,
    /// For everyone (the default; the least specific scope).
    #[arg(long)]
    default: bool,
}

impl ScopeArgs {
    fn parts(&self) -> (CredentialScope, Option<&str>) {
        if let Some(u) = &self.user {
            (CredentialScope::User, Some(u))
        } else if let Some(g) = &self.group {
            (CredentialScope::Group, Some(g))
        } else if let Some(r) = &self.role {
            (CredentialScope::Role, Some(r))
        } else {
            (CredentialScope::Default, None)
        }
    }
}

#[derive(Subcommand, Debug)]
enum SecretCommand {
    /// Set a target's token (or, with --env, one env entry). The value is prompted for without
    /// echo, or read from stdin (--value-stdin) or a file (--value-file); never from argv.
    #[command(group(ArgGroup::new("source").args(["value_stdin", "value_file"])))]
    Set {
        /// Target name or id.
        target: String,
        #[command(flatten)]
        scope: ScopeArgs,
        /// Set this env key instead of the token.
        #[arg(long, value_name = "KEY")]
        env: Option<String>,
        /// Read the value from stdin (one trailing newline is dropped).
        #[arg(long)]
        value_stdin: bool,
        /// Read the value from a file (one trailing newline is dropped).
        #[arg(long, value_name = "FILE")]
        value_file: Option<PathBuf>,
    },
    /// Remove a target's token (or, with --env, one env entry) at a scope.
    Unset {
        /// Target name or id.
        target: String,
        #[command(flatten)]
        scope: ScopeArgs,
        /// Remove this env key instead of the token.
        #[arg(long, value_name = "KEY")]
        env: Option<String>,
    },
    /// List which scopes have a token and which env keys are set; never the values.
    List {
        /// Target name or id.
        target: String,
    },
    /// Report stored rows that today's rules would refuse: deny-listed env keys (ignored at
    /// runtime) and user-scope values a user could no longer write (the target does not list
    /// them in user_env / user_token). Nothing is changed; remove rows with `secret unset`.
    Audit,
    /// Re-encrypt every stored value under a new 32-byte key (base64 or 64 hex digits in
    /// FILE), in one transaction, using the current key to open them.
    ///
    /// The file that holds the current key (encryption.key_file, or the generated
    /// DATA_DIR/encryption.key) is replaced with the new key first; running servers that read
    /// it pick the new key up within about a second, without a restart, and still open values
    /// sealed with the old one. With an inline encryption.key, set it to the new key and
    /// restart every server.
    RotateKey {
        /// File holding the new key: 32 bytes as base64 or 64 hex digits.
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
}

pub async fn run(ctx: &Context, args: SecretArgs) -> anyhow::Result<()> {
    let settings = ctx.settings()?;
    super::init_logging(&settings, true);
    let store = open_store(&settings).await?;
    let result = match args.command {
        SecretCommand::Set {
            target,
            scope,
            env,
            value_stdin,
            value_file,
        } => {
            let secrets = Secrets::load_or_generate(&settings)?;
            let service = CredentialService::new(
                store.clone(),
                Arc::new(Keyring::fixed(&secrets.encryption_key)),
            );
            let target = TargetService::new(store.clone()).find(&target).await?;
            let (kind, value) = scope.parts();
            let scope = service.scope_ref(kind, value).await?;
            let what = describe(&scope, env.as_deref());
            if let Some(key) = &env {
                crate::service::validate_env_key(key)?;
                // Before the prompt: a refused key should not cost the user typing a secret.
                crate::service::check_env_write(&target, &scope, Writer::Admin, key)?;
            }
            let value = read_value(value_stdin, value_file.as_deref(), &what)?;
            match &env {
                // The CLI acts on the database directly, as an admin does.
                None => {
                    service
                        .set_token(&target, &scope, &value, Writer::Admin)
                        .await?
                }
                Some(key) => {
                    let entry = BTreeMap::from([(key.clone(), value)]);
                    service
                        .write_env(&target, &scope, &entry, false, Writer::Admin)
                        .await?;
                }
            }
            report(ctx, "set", &target.name.to_string(), &scope, env.as_deref())
        }
        SecretCommand::Unset { target, scope, env } => {
            // Deleting opens nothing, so any key will do; no key file is created for it.
            let service = CredentialService::new(
                store.clone(),
                Arc::new(Keyring::fixed(&crate::crypto::random_bytes::<32>())),
            );
            let target = TargetService::new(store.clone()).find(&target).await?;
            let (kind, value) = scope.parts();
            let scope = service.scope_ref(kind, value).await?;
            let (kind, key) = match &env {
                None => (CredentialKind::Token, ""),
                Some(k) => (CredentialKind::Env, k.as_str()),
            };
            service.delete(target.id, kind, &scope, key).await?;
            report(
                ctx,
                "removed",
                &target.name.to_string(),
                &scope,
                env.as_deref(),
            )
        }
        SecretCommand::List { target } => list(ctx, &store, &target).await,
        SecretCommand::Audit => audit(ctx, &store).await,
        SecretCommand::RotateKey { new_key_file } => {
            rotate_key(ctx, &settings, &store, &new_key_file).await
        }
    };
    store.close().await;
    result
}

fn describe(scope: &ScopeRef, env: Option<&str>) -> String {
    let what = match env {
        None => "token".to_string(),
        Some(k) => format!("env {k}"),
    };
    match scope {
        ScopeRef::Default => format!("default {what}"),
        other => format!("{what} for {} {}", other.scope(), other.value()),
    }
}

fn report(
    ctx: &Context,
    verb: &str,
    target: &str,
    scope: &ScopeRef,
    env: Option<&str>,
) -> anyhow::Result<()> {
    if ctx.json {
        return output::json(&serde_json::json!({
            verb: true,
            "target": target,
            "kind": if env.is_some() { "env" } else { "token" },
            "scope": scope.scope(),
            "scope_value": Some(scope.value()).filter(|v| !v.is_empty()),
            "key": env,
        }));
    }
    println!("{verb} the {} of target {target}", describe(scope, env));
    Ok(())
}

/// Reads a value from stdin, a file, or a no-echo prompt on a terminal.
fn read_value(from_stdin: bool, file: Option<&Path>, what: &str) -> anyhow::Result<String> {
    let raw = if from_stdin {
        let mut buf = String::new();
        std::io::stdin()
            .read_to_string(&mut buf)
            .context("cannot read the value from stdin")?;
        buf
    } else if let Some(path) = file {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the value from {}", path.display()))?
    } else {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "no terminal to prompt for the value: use --value-stdin or --value-file FILE"
            );
        }
        rpassword::prompt_password(format!("Value of the {what}: "))?
    };
    let value = raw
        .strip_suffix('\n')
        .map(|v| v.strip_suffix('\r').unwrap_or(v))
        .unwrap_or(&raw)
        .to_string();
    anyhow::ensure!(!value.is_empty(), "the value is empty");
    Ok(value)
}

async fn list(ctx: &Context, store: &Store, target: &str) -> anyhow::Result<()> {
    let target = TargetService::new(store.clone()).find(target).await?;
    let entries: Vec<CredentialEntry> = store
        .target_credentials(target.id)
        .await?
        .iter()
        .map(CredentialEntry::from)
        .collect();
    if ctx.json {
        return output::json(&entries);
    }
    // User scopes are stored by id; show the email beside it when the user still exists.
    let emails = emails(store).await?;
    output::table(
        &["KIND", "SCOPE", "FOR", "KEY", "UPDATED"],
        entries
            .iter()
            .map(|e| {
                let value = e.scope_value.clone().unwrap_or_default();
                let who = match e.scope {
                    CredentialScope::User => emails.get(&value).cloned().unwrap_or(value),
                    _ => value,
                };
                vec![
                    e.kind.to_string(),
                    e.scope.to_string(),
                    who,
                    e.key.clone().unwrap_or_default(),
                    output::time(&e.updated_at),
                ]
            })
            .collect(),
    );
    Ok(())
}

async fn audit(ctx: &Context, store: &Store) -> anyhow::Result<()> {
    let found = crate::service::audit_credentials(store).await?;
    if ctx.json {
        return output::json(&found);
    }
    if found.is_empty() {
        println!("no stored credential breaks the current rules");
        return Ok(());
    }
    let emails = emails(store).await?;
    output::table(
        &["TARGET", "KIND", "SCOPE", "FOR", "KEY", "FINDING"],
        found
            .iter()
            .map(|f| {
                let value = f.scope_value.clone().unwrap_or_default();
                let who = match f.scope {
                    CredentialScope::User => emails.get(&value).cloned().unwrap_or(value),
                    _ => value,
                };
                vec![
                    f.target.clone(),
                    f.kind.to_string(),
                    f.scope.to_string(),
                    who,
                    f.key.clone().unwrap_or_default(),
                    f.detail.clone(),
                ]
            })
            .collect(),
    );
    Ok(())
}

/// User id → email, to show user scopes by who they are.
async fn emails(store: &Store) -> anyhow::Result<HashMap<String, String>> {
    Ok(store
        .list_users()
        .await?
        .into_iter()
        .map(|u| (u.id.to_string(), u.email.to_string()))
        .collect())
}

async fn rotate_key(
    ctx: &Context,
    settings: &crate::config::Settings,
    store: &Store,
    new_key_file: &Path,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(new_key_file)
        .with_context(|| format!("cannot read {}", new_key_file.display()))?;
    let new_key = crate::config::decode_key(&text, &new_key_file.display().to_string())
        .map_err(anyhow::Error::msg)?;
    let old_key = Secrets::load_or_generate(settings)?.encryption_key;
    anyhow::ensure!(
        new_key != old_key,
        "{} holds the key already in use",
        new_key_file.display()
    );
    let sealer = SecretBox::new(&new_key).with_retired(&old_key);
    // The file that holds the key (encryption.key_file, else the generated one in the data
    // directory) gets the new key before the database moves: a running server that then meets
    // a value sealed with a key it lacks reads this file again (no restart). An inline
    // encryption.key cannot be rewritten; servers using one need the new key and a restart.
    let key_file = match (&settings.encryption.key, &settings.encryption.key_file) {
        (Some(_), _) => None,
        (None, Some(path)) => Some(path.clone()),
        (None, None) => Some(settings.data_dir.join("encryption.key")),
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(path) = &key_file {
        replace_private(path, &b64.encode(new_key)).context(
            "nothing was changed (the key file must be writable to rotate without a restart)",
        )?;
    }
    let resealed = store
        .reseal_credentials(|r| {
            let context = seal_context(r.target_id, r.kind, r.scope, &r.scope_value, &r.key);
            let plain = sealer
                .open(
                    &r.ciphertext,
                    &KeyId::from_stored(r.key_id.clone()),
                    &context,
                )
                .with_context(|| {
                    format!(
                        "cannot open the {} {:?} of target {} at {} scope {:?}",
                        r.kind, r.key, r.target_id, r.scope, r.scope_value
                    )
                })?;
            let (ciphertext, key_id) = sealer.seal(&plain, &context);
            Ok::<_, anyhow::Error>((ciphertext, key_id.as_str().to_string()))
        })
        .await;
    let resealed = match resealed {
        Ok(n) => n,
        Err(e) => {
            if let Some(path) = &key_file
                && let Err(restore) = replace_private(path, &b64.encode(old_key))
            {
                return Err(e.context(format!(
                    "nothing was re-encrypted, and the old key could not be put back into {} ({restore:#}): restore it by hand",
                    path.display()
                )));
            }
            return Err(e.context("nothing was changed"));
        }
    };
    if ctx.json {
        return output::json(&serde_json::json!({
            "resealed": resealed,
            "key_id": sealer.current_key_id().as_str(),
            "replaced_key_file": key_file.as_ref().map(|p| p.display().to_string()),
        }));
    }
    println!(
        "re-encrypted {resealed} value(s) under key {}",
        sealer.current_key_id()
    );
    match &key_file {
        Some(path) => println!(
            "replaced {} with the new key; running servers that read it switch within about a second (replicas on other hosts need the same file)",
            path.display()
        ),
        None => println!(
            "now set encryption.key to the key in {} and restart every server; until then servers keep the values they already loaded",
            new_key_file.display()
        ),
    }
    Ok(())
}

/// Replaces `path` atomically (a private file beside it, then a rename) with `text`, mode 0600.
fn replace_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut staged = path.as_os_str().to_owned();
    staged.push(".new");
    let staged = PathBuf::from(staged);
    write_private(&staged, text)?;
    std::fs::rename(&staged, path).with_context(|| {
        let _ = std::fs::remove_file(&staged);
        format!("cannot replace {}", path.display())
    })
}

/// Creates (or truncates) `path` with mode 0600 and writes `text`.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}
