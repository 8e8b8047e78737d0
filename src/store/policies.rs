//! The policies aggregate: access rules and their subjects (who a rule is about).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{BUMP_REVISION, Store, StoreError, Table, on_pool};
use crate::domain::{
    Effect, PolicyId, PolicyName, PolicySubjectId, ResourceType, SubjectType, TargetId,
};

#[derive(Clone, Debug, PartialEq)]
pub struct PolicySubject {
    pub id: PolicySubjectId,
    pub policy_id: PolicyId,
    pub subject_type: SubjectType,
    /// None only for `everyone`; a role, a group, or a user's id or email otherwise.
    pub subject_value: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PolicyRecord {
    pub id: PolicyId,
    pub name: PolicyName,
    pub description: String,
    /// None = every target.
    pub target_id: Option<TargetId>,
    pub resource_type: ResourceType,
    /// A regular expression matched against the whole item name; None = every name.
    pub resource_pattern: Option<String>,
    pub effect: Effect,
    pub priority: i32,
    pub enabled: bool,
    /// In a stable order (type, value, id) so that equal sets compare equal.
    pub subjects: Vec<PolicySubject>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const POLICY_COLUMNS: &str = "id, name, description, target_id, resource_type, \
     resource_pattern, effect, priority, enabled, created_at, updated_at";

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

macro_rules! policy_from_row {
    ($row:expr) => {{
        let row = $row;
        let name: String = row.try_get("name")?;
        let resource_type: String = row.try_get("resource_type")?;
        let effect: String = row.try_get("effect")?;
        let target_id: Option<uuid::Uuid> = row.try_get("target_id")?;
        PolicyRecord {
            id: PolicyId::from_uuid(row.try_get("id")?),
            name: PolicyName::parse(&name).map_err(corrupt)?,
            description: row.try_get("description")?,
            target_id: target_id.map(TargetId::from_uuid),
            resource_type: ResourceType::parse(&resource_type).map_err(corrupt)?,
            resource_pattern: row.try_get("resource_pattern")?,
            effect: Effect::parse(&effect).map_err(corrupt)?,
            priority: row.try_get("priority")?,
            enabled: row.try_get("enabled")?,
            subjects: Vec::new(),
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

macro_rules! subject_from_row {
    ($row:expr) => {{
        let row = $row;
        let subject_type: String = row.try_get("subject_type")?;
        PolicySubject {
            id: PolicySubjectId::from_uuid(row.try_get("id")?),
            policy_id: PolicyId::from_uuid(row.try_get("policy_id")?),
            subject_type: SubjectType::parse(&subject_type).map_err(corrupt)?,
            subject_value: row.try_get("subject_value")?,
        }
    }};
}

/// Sorted in Rust rather than SQL: the backends order NULLs differently.
pub fn sort_subjects(subjects: &mut [PolicySubject]) {
    subjects.sort_by(|a, b| {
        (a.subject_type.as_str(), &a.subject_value, a.id).cmp(&(
            b.subject_type.as_str(),
            &b.subject_value,
            b.id,
        ))
    });
}

const INSERT_SUBJECT: &str = "INSERT INTO policy_subjects (id, policy_id, subject_type, \
     subject_value) VALUES ($1, $2, $3, $4)";

/// How `policy_where` finds a policy.
#[derive(Clone, Copy)]
enum PolicyKey<'a> {
    Id(PolicyId),
    Name(&'a str),
}

impl Store {
    /// Inserts a policy with its subjects in one transaction; `Conflict` when the name is taken.
    pub async fn insert_policy(&self, p: &PolicyRecord) -> Result<(), StoreError> {
        let conflict = |e| StoreError::conflict_or(e, format!("a policy named {}", p.name));
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO policies ({POLICY_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            )))
            .bind(p.id.as_uuid())
            .bind(p.name.as_str())
            .bind(&p.description)
            .bind(p.target_id.map(|t| t.as_uuid()))
            .bind(p.resource_type.as_str())
            .bind(p.resource_pattern.as_deref())
            .bind(p.effect.as_str())
            .bind(p.priority)
            .bind(p.enabled)
            .bind(p.created_at)
            .bind(p.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(conflict)?;
            for s in &p.subjects {
                sqlx::query(INSERT_SUBJECT)
                    .bind(s.id.as_uuid())
                    .bind(p.id.as_uuid())
                    .bind(s.subject_type.as_str())
                    .bind(s.subject_value.as_deref())
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn policy(&self, id: PolicyId) -> Result<Option<PolicyRecord>, StoreError> {
        self.policy_where("id", PolicyKey::Id(id)).await
    }

    pub async fn policy_by_name(
        &self,
        name: &PolicyName,
    ) -> Result<Option<PolicyRecord>, StoreError> {
        self.policy_where("name", PolicyKey::Name(name.as_str()))
            .await
    }

    /// One policy (with its subjects) by a unique column.
    async fn policy_where(
        &self,
        column: &'static str,
        key: PolicyKey<'_>,
    ) -> Result<Option<PolicyRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {POLICY_COLUMNS} FROM policies WHERE {column} = $1"
        ));
        let found = on_pool!(self, |pool| {
            let query = sqlx::query(sql);
            let query = match key {
                PolicyKey::Id(id) => query.bind(id.as_uuid()),
                PolicyKey::Name(name) => query.bind(name),
            };
            match query.fetch_optional(pool).await? {
                Some(row) => Some(policy_from_row!(&row)),
                None => None,
            }
        });
        self.with_subjects(found).await
    }

    async fn with_subjects(
        &self,
        found: Option<PolicyRecord>,
    ) -> Result<Option<PolicyRecord>, StoreError> {
        let Some(mut p) = found else { return Ok(None) };
        p.subjects = on_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT id, policy_id, subject_type, subject_value FROM policy_subjects \
                 WHERE policy_id = $1",
            )
            .bind(p.id.as_uuid())
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(subject_from_row!(row));
            }
            out
        });
        sort_subjects(&mut p.subjects);
        Ok(Some(p))
    }

    /// All policies with their subjects (two queries in all), by priority desc, then name:
    /// the order the engine evaluates them in.
    pub async fn list_policies(&self) -> Result<Vec<PolicyRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {POLICY_COLUMNS} FROM policies ORDER BY priority DESC, name"
        ));
        let (mut policies, subjects) = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let rows = sqlx::query(sql).fetch_all(&mut *tx).await?;
            let mut policies = Vec::with_capacity(rows.len());
            for row in &rows {
                policies.push(policy_from_row!(row));
            }
            // Same transaction: a subject added between the two reads cannot go missing.
            let rows = sqlx::query(
                "SELECT id, policy_id, subject_type, subject_value FROM policy_subjects",
            )
            .fetch_all(&mut *tx)
            .await?;
            let mut subjects = Vec::with_capacity(rows.len());
            for row in &rows {
                subjects.push(subject_from_row!(row));
            }
            tx.commit().await?;
            (policies, subjects)
        });
        let mut by_policy: HashMap<PolicyId, Vec<PolicySubject>> = HashMap::new();
        for s in subjects {
            by_policy.entry(s.policy_id).or_default().push(s);
        }
        for p in &mut policies {
            p.subjects = by_policy.remove(&p.id).unwrap_or_default();
            sort_subjects(&mut p.subjects);
        }
        Ok(policies)
    }

    /// Replaces every column but `id` and `created_at`, and the subject set, with the
    /// record's (subjects keep their ids). False when absent; `Conflict` on a taken name.
    pub async fn update_policy(&self, p: &PolicyRecord) -> Result<bool, StoreError> {
        let conflict = |e| StoreError::conflict_or(e, format!("a policy named {}", p.name));
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE policies SET name = $2, description = $3, target_id = $4, \
                 resource_type = $5, resource_pattern = $6, effect = $7, priority = $8, \
                 enabled = $9, updated_at = $10 WHERE id = $1",
            )
            .bind(p.id.as_uuid())
            .bind(p.name.as_str())
            .bind(&p.description)
            .bind(p.target_id.map(|t| t.as_uuid()))
            .bind(p.resource_type.as_str())
            .bind(p.resource_pattern.as_deref())
            .bind(p.effect.as_str())
            .bind(p.priority)
            .bind(p.enabled)
            .bind(p.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(conflict)?
            .rows_affected();
            if n > 0 {
                sqlx::query("DELETE FROM policy_subjects WHERE policy_id = $1")
                    .bind(p.id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                for s in &p.subjects {
                    sqlx::query(INSERT_SUBJECT)
                        .bind(s.id.as_uuid())
                        .bind(p.id.as_uuid())
                        .bind(s.subject_type.as_str())
                        .bind(s.subject_value.as_deref())
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            n > 0
        }))
    }

    /// Deletes the policy and (by cascade) its subjects. False when absent.
    pub async fn delete_policy(&self, id: PolicyId) -> Result<bool, StoreError> {
        self.delete_row(Table::Policies, id.as_uuid()).await
    }

    /// Adds one subject to an existing policy. False when the policy is absent.
    pub async fn add_policy_subject(&self, s: &PolicySubject) -> Result<bool, StoreError> {
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // Touching the policy first both checks it exists and records the change time.
            let n = sqlx::query("UPDATE policies SET updated_at = $2 WHERE id = $1")
                .bind(s.policy_id.as_uuid())
                .bind(now_micros())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n > 0 {
                sqlx::query(INSERT_SUBJECT)
                    .bind(s.id.as_uuid())
                    .bind(s.policy_id.as_uuid())
                    .bind(s.subject_type.as_str())
                    .bind(s.subject_value.as_deref())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            n > 0
        }))
    }

    /// Removes one subject of a policy. False when no such subject belongs to that policy.
    pub async fn remove_policy_subject(
        &self,
        policy: PolicyId,
        subject: PolicySubjectId,
    ) -> Result<bool, StoreError> {
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("DELETE FROM policy_subjects WHERE id = $1 AND policy_id = $2")
                .bind(subject.as_uuid())
                .bind(policy.as_uuid())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n > 0 {
                sqlx::query("UPDATE policies SET updated_at = $2 WHERE id = $1")
                    .bind(policy.as_uuid())
                    .bind(now_micros())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            n > 0
        }))
    }
}

/// Now at the precision both backends keep, so a write and a later read agree.
fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
