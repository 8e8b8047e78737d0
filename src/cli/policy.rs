//! `reflow policy …`: policy administration straight on the configured database, plus
//! `test` (explain a decision), `explain` (effective access, in `policy_explain`), `export`
//! (YAML) and `apply` (make the store match a file).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{Context, output};
use crate::app::open_store;
use crate::policy::{ItemType, SkipReason};
use crate::service::{PolicyFile, PolicyInput, PolicyService, PolicyView, SubjectInput};
use crate::store::{PolicyRecord, Store};

#[derive(Args, Debug)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Add a policy: `--effect allow|deny`, who it is about, and what it covers.
    Add(Box<AddArgs>),
    /// List policies in evaluation order (priority desc, then name).
    List,
    /// Show one policy (by name or id).
    Show { policy: String },
    /// Change the given settings of a policy; subject flags replace all subjects.
    Update(Box<UpdateArgs>),
    /// Delete a policy.
    Remove { policy: String },
    /// Make a policy take part in decisions again.
    Enable { policy: String },
    /// Keep a policy but ignore it in decisions.
    Disable { policy: String },
    /// Explain what the policies decide for a user: one item, or (without an item) whether
    /// the target is visible at all.
    Test(TestArgs),
    /// Effective access of a user (or a role and groups): every target and item, the policy
    /// that decided it and the credential tier that would be injected.
    Explain(super::policy_explain::ExplainArgs),
    /// Print every policy as YAML (targets by name, users by email), for `apply`.
    Export,
    /// Make the policies match a file written like `export`'s output (keyed by name).
    Apply {
        /// The YAML file.
        #[arg(long, short = 'f', value_name = "FILE")]
        file: PathBuf,
        /// Also remove policies the file does not name.
        #[arg(long)]
        prune: bool,
        /// Print what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Settings shared by `add` and `update`.
#[derive(Args, Debug)]
struct FieldArgs {
    /// allow or deny.
    #[arg(long)]
    effect: Option<String>,
    /// A role this policy is about; repeat for several.
    #[arg(long = "role", value_name = "ROLE")]
    roles: Vec<String>,
    /// A group this policy is about; repeat for several.
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// A user (email or id) this policy is about; repeat for several.
    #[arg(long = "user", value_name = "EMAIL")]
    users: Vec<String>,
    /// The policy is about every authenticated user.
    #[arg(long)]
    everyone: bool,
    /// Limit the policy to one target (name or id); default: every target.
    #[arg(long)]
    target: Option<String>,
    /// tool, resource, prompt or all.
    #[arg(long = "type", value_name = "TYPE")]
    resource_type: Option<String>,
    /// A regular expression the whole item name (or URI) must match.
    #[arg(long)]
    pattern: Option<String>,
    /// Higher is tried first (-10000 to 10000).
    #[arg(long, allow_negative_numbers = true)]
    priority: Option<i64>,
    #[arg(long)]
    description: Option<String>,
}

#[derive(Args, Debug)]
struct AddArgs {
    name: String,
    #[command(flatten)]
    fields: FieldArgs,
    /// Create the policy disabled.
    #[arg(long)]
    disabled: bool,
}

#[derive(Args, Debug)]
struct UpdateArgs {
    policy: String,
    /// Rename the policy.
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    fields: FieldArgs,
    /// Make the policy apply to every target.
    #[arg(long, conflicts_with = "target")]
    all_targets: bool,
    /// Remove the pattern: every name matches.
    #[arg(long, conflicts_with = "pattern")]
    clear_pattern: bool,
}

#[derive(Args, Debug)]
struct TestArgs {
    /// The user (email or id).
    #[arg(long)]
    user: String,
    /// The target (name or id).
    #[arg(long)]
    target: String,
    /// A tool name (original, unprefixed).
    #[arg(long, conflicts_with_all = ["resource", "prompt"])]
    tool: Option<String>,
    /// A resource URI.
    #[arg(long, conflicts_with = "prompt")]
    resource: Option<String>,
    /// A prompt name.
    #[arg(long)]
    prompt: Option<String>,
}

impl FieldArgs {
    fn into_input(self) -> PolicyInput {
        let mut subjects: Vec<SubjectInput> = Vec::new();
        if self.everyone {
            subjects.push(subject("everyone", None));
        }
        subjects.extend(self.roles.into_iter().map(|v| subject("role", Some(v))));
        subjects.extend(self.groups.into_iter().map(|v| subject("group", Some(v))));
        subjects.extend(self.users.into_iter().map(|v| subject("user", Some(v))));
        PolicyInput {
            effect: self.effect,
            target: self.target.map(Some),
            resource_type: self.resource_type,
            resource_pattern: self.pattern.map(Some),
            priority: self.priority,
            description: self.description,
            // No subject flags on update: subjects stay as they are.
            subjects: (!subjects.is_empty()).then_some(subjects),
            ..PolicyInput::default()
        }
    }
}

fn subject(t: &str, v: Option<String>) -> SubjectInput {
    SubjectInput {
        subject_type: t.into(),
        subject_value: v,
    }
}

pub async fn run(ctx: &Context, args: PolicyArgs) -> anyhow::Result<()> {
    let settings = ctx.settings()?;
    super::init_logging(&settings, true);
    let store = open_store(&settings).await?;
    let policies = PolicyService::new(store.clone());
    let result = run_command(ctx, &store, &policies, args.command).await;
    store.close().await;
    result
}

async fn run_command(
    ctx: &Context,
    store: &Store,
    policies: &PolicyService,
    command: PolicyCommand,
) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Add(add) => {
            let mut input = add.fields.into_input();
            input.name = Some(add.name);
            if add.disabled {
                input.enabled = Some(false);
            }
            let policy = policies.create(input).await?;
            print_policy(ctx, policies, &policy, "created").await
        }
        PolicyCommand::List => {
            let list = policies.views(&policies.list().await?).await?;
            if ctx.json {
                return output::json(&list);
            }
            output::table(
                &[
                    "PRIORITY", "NAME", "EFFECT", "SUBJECTS", "TARGET", "TYPE", "PATTERN",
                    "ENABLED",
                ],
                list.iter()
                    .map(|p| {
                        vec![
                            p.priority.to_string(),
                            p.name.to_string(),
                            p.effect.to_string(),
                            subjects_text(p),
                            target_text(p),
                            p.resource_type.to_string(),
                            p.resource_pattern.clone().unwrap_or_else(|| "-".into()),
                            if p.enabled { "yes" } else { "no" }.to_string(),
                        ]
                    })
                    .collect(),
            );
            Ok(())
        }
        PolicyCommand::Show { policy } => {
            let p = policies.view(&policies.find(&policy).await?).await?;
            if ctx.json {
                return output::json(&p);
            }
            output::fields(&[
                ("id", p.id.to_string()),
                ("name", p.name.to_string()),
                ("description", p.description.clone()),
                ("effect", p.effect.to_string()),
                ("priority", p.priority.to_string()),
                ("subjects", subjects_text(&p)),
                ("target", target_text(&p)),
                ("type", p.resource_type.to_string()),
                (
                    "pattern",
                    p.resource_pattern.clone().unwrap_or_else(|| "-".into()),
                ),
                ("enabled", p.enabled.to_string()),
                ("created", output::time(&p.created_at)),
                ("updated", output::time(&p.updated_at)),
            ]);
            Ok(())
        }
        PolicyCommand::Update(up) => {
            let id = policies.find(&up.policy).await?.id;
            let mut input = up.fields.into_input();
            input.name = up.name;
            if up.all_targets {
                input.target = Some(None);
            }
            if up.clear_pattern {
                input.resource_pattern = Some(None);
            }
            let policy = policies.update(id, input).await?;
            print_policy(ctx, policies, &policy, "updated").await
        }
        PolicyCommand::Remove { policy } => {
            let p = policies.find(&policy).await?;
            policies.remove(p.id).await?;
            if ctx.json {
                output::json(&serde_json::json!({ "removed": p.id }))
            } else {
                println!("removed policy {} ({})", p.name, p.id);
                Ok(())
            }
        }
        PolicyCommand::Enable { policy } => {
            let id = policies.find(&policy).await?.id;
            let p = policies.set_enabled(id, true).await?;
            print_policy(ctx, policies, &p, "enabled").await
        }
        PolicyCommand::Disable { policy } => {
            let id = policies.find(&policy).await?.id;
            let p = policies.set_enabled(id, false).await?;
            print_policy(ctx, policies, &p, "disabled").await
        }
        PolicyCommand::Test(t) => test(ctx, policies, t).await,
        PolicyCommand::Explain(args) => super::policy_explain::run(ctx, store, args).await,
        PolicyCommand::Export => {
            let file = policies.export(store).await?;
            if ctx.json {
                return output::json(&file);
            }
            print!("{}", serde_saphyr::to_string(&file)?);
            Ok(())
        }
        PolicyCommand::Apply {
            file,
            prune,
            dry_run,
        } => apply(ctx, policies, &file, prune, dry_run).await,
    }
}

async fn test(ctx: &Context, policies: &PolicyService, t: TestArgs) -> anyhow::Result<()> {
    let (item, name) = match (t.tool, t.resource, t.prompt) {
        (Some(n), _, _) => (Some(ItemType::Tool), Some(n)),
        (_, Some(n), _) => (Some(ItemType::Resource), Some(n)),
        (_, _, Some(n)) => (Some(ItemType::Prompt), Some(n)),
        _ => (None, None),
    };
    let eval = policies
        .evaluate(&t.user, &t.target, item, name.as_deref())
        .await?;
    let e = &eval.explanation;
    if ctx.json {
        return output::json(&serde_json::json!({
            "decision": if e.decision.allowed { "allow" } else { "deny" },
            "policy": e.decision.policy,
            "trace": e.trace,
        }));
    }
    let what = match (item, &name) {
        (Some(item), Some(name)) => {
            format!("{} {name:?} on target {}", item.as_str(), eval.target.name)
        }
        _ => format!("target {} (visibility)", eval.target.name),
    };
    let verdict = if e.decision.allowed { "allow" } else { "deny" };
    match &e.decision.policy {
        Some(p) => println!(
            "{verdict}: {} for {what}, by policy {}",
            eval.user.email, p.name
        ),
        None => println!(
            "{verdict}: {} for {what}, no policy matched (default deny)",
            eval.user.email
        ),
    }
    for step in &e.trace {
        let mark = if step.matched { "=>" } else { "  " };
        let reason = step.reason.map_or("matched", reason_word);
        println!(
            "{mark} {:>6} {:<5} {:<24} {reason}: {}",
            step.priority,
            step.effect.as_str(),
            step.policy.name,
            step.detail
        );
    }
    Ok(())
}

fn reason_word(r: SkipReason) -> &'static str {
    match r {
        SkipReason::Disabled => "disabled",
        SkipReason::Subject => "subject",
        SkipReason::Target => "target",
        SkipReason::Type => "type",
        SkipReason::Pattern => "pattern",
        SkipReason::PartialDeny => "partial deny",
    }
}

async fn apply(
    ctx: &Context,
    policies: &PolicyService,
    path: &std::path::Path,
    prune: bool,
    dry_run: bool,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let file: PolicyFile = serde_saphyr::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not a policy file: {e}", path.display()))?;
    let changes = policies.plan(&file, prune).await?;
    let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
    if !dry_run {
        policies.execute(changes).await?;
    }
    if ctx.json {
        return output::json(&serde_json::json!({ "changes": lines, "dry_run": dry_run }));
    }
    if lines.is_empty() {
        println!("no changes");
    }
    for line in &lines {
        println!("{line}");
    }
    if dry_run && !lines.is_empty() {
        println!("(dry run: nothing changed)");
    }
    Ok(())
}

async fn print_policy(
    ctx: &Context,
    policies: &PolicyService,
    p: &PolicyRecord,
    verb: &str,
) -> anyhow::Result<()> {
    let view = policies.view(p).await?;
    if ctx.json {
        return output::json(&view);
    }
    println!(
        "{verb} policy {} ({} {}, priority {}, {}, id {})",
        view.name,
        view.effect,
        subjects_text(&view),
        view.priority,
        if view.enabled { "enabled" } else { "disabled" },
        view.id
    );
    Ok(())
}

fn subjects_text(p: &PolicyView) -> String {
    if p.subjects.is_empty() {
        return "(nobody)".into();
    }
    p.subjects
        .iter()
        .map(|s| match &s.subject_value {
            Some(v) => format!("{}:{v}", s.subject_type),
            None => s.subject_type.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn target_text(p: &PolicyView) -> String {
    match (&p.target_name, p.target_id) {
        (Some(n), _) => n.to_string(),
        (None, Some(id)) => id.to_string(),
        (None, None) => "(all)".into(),
    }
}
