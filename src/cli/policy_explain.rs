//! `reflow policy explain --user EMAIL` (or `--role R --group G`): the effective-access
//! explorer on the command line — every target, tool, resource and prompt the subject gets,
//! the policy that decided each, and the credential tier that would be injected.

use clap::Args;

use super::{Context, output};
use crate::access::{AccessSubject, explain};
use crate::credentials::CredentialSnapshot;
use crate::domain::Role;
use crate::service::{PolicyService, TargetService, UserService, parse_groups};
use crate::store::Store;

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The user (email or id).
    #[arg(long, conflicts_with = "role")]
    user: Option<String>,
    /// Or a role (for anyone with it) …
    #[arg(long, required_unless_present = "user")]
    role: Option<String>,
    /// … and groups; repeat for several.
    #[arg(long = "group", requires = "role")]
    groups: Vec<String>,
}

pub async fn run(ctx: &Context, store: &Store, args: ExplainArgs) -> anyhow::Result<()> {
    let who = match (args.user, args.role) {
        (Some(u), _) => {
            let user = UserService::new(store.clone()).find(&u).await?;
            AccessSubject {
                user_id: Some(user.id),
                email: Some(user.email.to_string()),
                role: user.role,
                groups: user.groups,
            }
        }
        (None, Some(role)) => AccessSubject {
            user_id: None,
            email: None,
            role: Role::parse(&role)?,
            groups: parse_groups(&args.groups)?,
        },
        (None, None) => anyhow::bail!("give --user, or --role (with optional --group)"),
    };
    let settings = ctx.settings()?;
    let secrets = crate::app::Secrets::load_or_generate(&settings)?;
    let sealer = crate::crypto::SecretBox::new(&secrets.encryption_key);
    let credentials = CredentialSnapshot::load(store, &sealer).await?;
    let policies = PolicyService::new(store.clone()).list().await?;
    let targets = TargetService::new(store.clone()).list().await?;
    let access = explain(
        who,
        &policies,
        &targets,
        &credentials,
        &settings.naming.separator,
    )
    .await?;
    if ctx.json {
        return output::json(&access);
    }
    let mut rows = Vec::new();
    for t in &access.targets {
        let decided = t.policy.clone().unwrap_or_else(|| "default deny".into());
        let credential = t.credential.clone().unwrap_or_else(|| "-".into());
        let status = if t.visible { "visible" } else { "hidden" };
        let note = t.error.clone().unwrap_or_default();
        rows.push(vec![
            t.name.clone(),
            "target".into(),
            status.into(),
            decided,
            credential,
            note,
        ]);
        for i in &t.items {
            rows.push(vec![
                format!("  {}", i.exposed),
                i.kind.as_str().into(),
                if i.allowed { "allow" } else { "deny" }.into(),
                i.policy.clone().unwrap_or_else(|| "default deny".into()),
                String::new(),
                String::new(),
            ]);
        }
    }
    output::table(
        &["name", "kind", "decision", "policy", "credential", "note"],
        rows,
    );
    Ok(())
}
