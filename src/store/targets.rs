//! The targets aggregate: the upstream MCP servers reflow routes to, and how to reach them.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::types::Json;

use super::{BUMP_REVISION, Store, StoreError, Table, on_pool};
use crate::domain::{
    AuthType, IsolationBoundary, Statefulness, TargetId, TargetName, TargetResources, Transport,
};

#[derive(Clone, Debug, PartialEq)]
pub struct TargetRecord {
    pub id: TargetId,
    pub name: TargetName,
    pub url: Option<String>,
    pub transport: Transport,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub cwd: Option<String>,
    pub image: Option<String>,
    pub port: Option<u16>,
    pub health_path: Option<String>,
    pub statefulness: Statefulness,
    pub isolation_boundary: IsolationBoundary,
    pub auth_type: AuthType,
    pub auth_header_name: Option<String>,
    pub enabled: bool,
    /// None = the target name; Some("") = tools exposed unprefixed.
    pub prefix: Option<String>,
    /// Stored as whole milliseconds (`timeout_ms`).
    pub timeout: Option<Duration>,
    /// Non-secret environment; secrets live encrypted in `target_credentials`.
    pub env: BTreeMap<String, String>,
    pub tags: Vec<String>,
    /// Env keys a user may supply at their own user scope (admins may write any key).
    pub user_env: Vec<String>,
    /// Whether a user may set their own token.
    pub user_token: bool,
    /// Pod resource requests and limits (kubernetes targets).
    pub resources: TargetResources,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Times an admin restarted the target (`reflow target restart`); set by the store only.
    pub restarts: i64,
}

impl TargetRecord {
    /// The prefix tool names get: the explicit one (possibly empty), else the target name.
    pub fn effective_prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or(self.name.as_str())
    }
}

const TARGET_COLUMNS: &str = "id, name, url, transport_type, command, args, cwd, image, port, \
     health_path, statefulness, isolation_boundary, auth_type, auth_header_name, enabled, prefix, \
     timeout_ms, env, tags, user_env, user_token, created_at, updated_at, resources, restarts";

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

macro_rules! target_from_row {
    ($row:expr) => {{
        let row = $row;
        let name: String = row.try_get("name")?;
        let transport: String = row.try_get("transport_type")?;
        let statefulness: String = row.try_get("statefulness")?;
        let isolation: String = row.try_get("isolation_boundary")?;
        let auth_type: String = row.try_get("auth_type")?;
        let port: Option<i32> = row.try_get("port")?;
        let timeout_ms: Option<i64> = row.try_get("timeout_ms")?;
        let Json(args): Json<Vec<String>> = row.try_get("args")?;
        let Json(env): Json<BTreeMap<String, String>> = row.try_get("env")?;
        let Json(tags): Json<Vec<String>> = row.try_get("tags")?;
        let Json(user_env): Json<Vec<String>> = row.try_get("user_env")?;
        let Json(resources): Json<TargetResources> = row.try_get("resources")?;
        TargetRecord {
            id: TargetId::from_uuid(row.try_get("id")?),
            name: TargetName::parse(&name).map_err(corrupt)?,
            url: row.try_get("url")?,
            transport: Transport::parse(&transport).map_err(corrupt)?,
            command: row.try_get("command")?,
            args,
            cwd: row.try_get("cwd")?,
            image: row.try_get("image")?,
            port: port
                .map(u16::try_from)
                .transpose()
                .map_err(|_| corrupt(format!("target {name}: port {port:?} out of range")))?,
            health_path: row.try_get("health_path")?,
            statefulness: Statefulness::parse(&statefulness).map_err(corrupt)?,
            isolation_boundary: IsolationBoundary::parse(&isolation).map_err(corrupt)?,
            auth_type: AuthType::parse(&auth_type).map_err(corrupt)?,
            auth_header_name: row.try_get("auth_header_name")?,
            enabled: row.try_get("enabled")?,
            prefix: row.try_get("prefix")?,
            timeout: timeout_ms
                .map(u64::try_from)
                .transpose()
                .map_err(|_| corrupt(format!("target {name}: negative timeout")))?
                .map(Duration::from_millis),
            env,
            tags,
            user_env,
            user_token: row.try_get("user_token")?,
            resources,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            restarts: row.try_get("restarts")?,
        }
    }};
}

fn timeout_ms(t: &TargetRecord) -> Option<i64> {
    t.timeout
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Store {
    /// Inserts a target; `Conflict` when the name is taken.
    pub async fn insert_target(&self, t: &TargetRecord) -> Result<(), StoreError> {
        let conflict = |e| StoreError::conflict_or(e, format!("a target named {}", t.name));
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO targets ({TARGET_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
                 $18, $19, $20, $21, $22, $23, $24, $25)"
            )))
            .bind(t.id.as_uuid())
            .bind(t.name.as_str())
            .bind(t.url.as_deref())
            .bind(t.transport.as_str())
            .bind(t.command.as_deref())
            .bind(Json(&t.args))
            .bind(t.cwd.as_deref())
            .bind(t.image.as_deref())
            .bind(t.port.map(i32::from))
            .bind(t.health_path.as_deref())
            .bind(t.statefulness.as_str())
            .bind(t.isolation_boundary.as_str())
            .bind(t.auth_type.as_str())
            .bind(t.auth_header_name.as_deref())
            .bind(t.enabled)
            .bind(t.prefix.as_deref())
            .bind(timeout_ms(t))
            .bind(Json(&t.env))
            .bind(Json(&t.tags))
            .bind(Json(&t.user_env))
            .bind(t.user_token)
            .bind(t.created_at)
            .bind(t.updated_at)
            .bind(Json(&t.resources))
            .bind(t.restarts)
            .execute(&mut *tx)
            .await
            .map_err(conflict)?;
            sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn target(&self, id: TargetId) -> Result<Option<TargetRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {TARGET_COLUMNS} FROM targets WHERE id = $1"
        ));
        Ok(on_pool!(self, |pool| {
            match sqlx::query(sql)
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Some(target_from_row!(&row)),
                None => None,
            }
        }))
    }

    pub async fn target_by_name(
        &self,
        name: &TargetName,
    ) -> Result<Option<TargetRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {TARGET_COLUMNS} FROM targets WHERE name = $1"
        ));
        Ok(on_pool!(self, |pool| {
            match sqlx::query(sql)
                .bind(name.as_str())
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Some(target_from_row!(&row)),
                None => None,
            }
        }))
    }

    /// All targets, by name.
    pub async fn list_targets(&self) -> Result<Vec<TargetRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {TARGET_COLUMNS} FROM targets ORDER BY name"
        ));
        Ok(on_pool!(self, |pool| {
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(target_from_row!(row));
            }
            out
        }))
    }

    /// Replaces every column but `id` and `created_at` with the record's values. False when
    /// absent; `Conflict` when renamed onto another target's name.
    pub async fn update_target(&self, t: &TargetRecord) -> Result<bool, StoreError> {
        let conflict = |e| StoreError::conflict_or(e, format!("a target named {}", t.name));
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE targets SET name = $2, url = $3, transport_type = $4, command = $5, \
                 args = $6, cwd = $7, image = $8, port = $9, health_path = $10, \
                 statefulness = $11, isolation_boundary = $12, auth_type = $13, \
                 auth_header_name = $14, enabled = $15, prefix = $16, timeout_ms = $17, \
                 env = $18, tags = $19, user_env = $20, user_token = $21, updated_at = $22, \
                 resources = $23 \
                 WHERE id = $1",
            )
            .bind(t.id.as_uuid())
            .bind(t.name.as_str())
            .bind(t.url.as_deref())
            .bind(t.transport.as_str())
            .bind(t.command.as_deref())
            .bind(Json(&t.args))
            .bind(t.cwd.as_deref())
            .bind(t.image.as_deref())
            .bind(t.port.map(i32::from))
            .bind(t.health_path.as_deref())
            .bind(t.statefulness.as_str())
            .bind(t.isolation_boundary.as_str())
            .bind(t.auth_type.as_str())
            .bind(t.auth_header_name.as_deref())
            .bind(t.enabled)
            .bind(t.prefix.as_deref())
            .bind(timeout_ms(t))
            .bind(Json(&t.env))
            .bind(Json(&t.tags))
            .bind(Json(&t.user_env))
            .bind(t.user_token)
            .bind(t.updated_at)
            .bind(Json(&t.resources))
            .execute(&mut *tx)
            .await
            .map_err(conflict)?
            .rows_affected();
            if n > 0 {
                sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            n > 0
        }))
    }

    /// Counts a restart: every server sees the target changed at its next reload and drops
    /// its connections to it. False if there is no such target.
    pub async fn restart_target(&self, id: TargetId) -> Result<bool, StoreError> {
        self.write_by_id(
            "UPDATE targets SET restarts = restarts + 1 WHERE id = $1",
            id.as_uuid(),
        )
        .await
    }

    /// Deletes the target and (by cascade) its policies, credentials and instances.
    pub async fn delete_target(&self, id: TargetId) -> Result<bool, StoreError> {
        self.delete_row(Table::Targets, id.as_uuid()).await
    }
}
