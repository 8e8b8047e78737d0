//! The gateway's view of a target: what it needs to connect and to name things, compared by
//! value so a config change is noticed and its connections renewed.

use std::time::Duration;

use crate::domain::{AuthType, Statefulness, TargetId, Transport};
use crate::store::TargetRecord;

use super::GatewayOptions;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub id: TargetId,
    pub name: String,
    pub prefix: String,
    pub transport: Transport,
    pub url: url::Url,
    pub statefulness: Statefulness,
    pub timeout: Duration,
    pub auth_type: AuthType,
    pub auth_header_name: Option<String>,
}

impl Target {
    /// None for targets this data path cannot reach yet (stdio, Kubernetes) or without a URL.
    pub fn from_record(r: &TargetRecord, opts: &GatewayOptions) -> Option<Self> {
        if !r.transport.is_http() {
            return None;
        }
        let url = url::Url::parse(r.url.as_deref()?).ok()?;
        Some(Self {
            id: r.id,
            name: r.name.to_string(),
            prefix: r.effective_prefix().to_string(),
            transport: r.transport,
            url,
            statefulness: r.statefulness,
            timeout: r.timeout.unwrap_or(opts.default_timeout),
            auth_type: r.auth_type,
            auth_header_name: r.auth_header_name.clone(),
        })
    }

    /// Stateful targets get one upstream session per downstream session.
    pub fn per_session(&self) -> bool {
        self.statefulness == Statefulness::Stateful
    }
}
