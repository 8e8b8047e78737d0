//! The gateway's view of a target: what it needs to connect and to name things, compared by
//! value so a config change is noticed and its connections renewed.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::domain::{AuthType, IsolationBoundary, Statefulness, TargetId, Transport};
use crate::store::TargetRecord;

use super::GatewayOptions;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub id: TargetId,
    pub name: String,
    pub prefix: String,
    pub transport: Transport,
    pub endpoint: Endpoint,
    pub statefulness: Statefulness,
    pub timeout: Duration,
    pub auth_type: AuthType,
    pub auth_header_name: Option<String>,
    /// Moves on `reflow target restart`: the target then differs from the one its connections
    /// were opened for, and they are dropped like those of an edited target.
    pub restarts: i64,
    /// `gateway.max_upstream_message`.
    pub max_message: usize,
}

/// How the target is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Http(url::Url),
    Stdio(StdioCommand),
    /// A pod per isolation key, run by this gateway (`transport: kubernetes`).
    #[cfg(feature = "kubernetes")]
    Pod(PodTarget),
}

/// A kubernetes target: what its pods run and who shares one.
#[cfg(feature = "kubernetes")]
use crate::upstream::kubernetes::manifest::Serve;

#[cfg(feature = "kubernetes")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodTarget {
    pub template: crate::upstream::kubernetes::PodTemplate,
    pub isolation: IsolationBoundary,
}

/// A stdio target's process: what to run, with which non-secret env, and who shares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StdioCommand {
    pub command: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<String>,
    pub isolation: IsolationBoundary,
}

impl Target {
    /// None for targets this data path cannot reach yet (Kubernetes) or without a URL/command.
    pub fn from_record(r: &TargetRecord, opts: &GatewayOptions) -> Option<Self> {
        let endpoint = match r.transport {
            Transport::StreamableHttp | Transport::Sse => {
                Endpoint::Http(url::Url::parse(r.url.as_deref()?).ok()?)
            }
            Transport::Stdio => Endpoint::Stdio(StdioCommand {
                command: r.command.clone().filter(|c| !c.is_empty())?,
                args: r.args.clone(),
                env: r.env.clone(),
                cwd: r.cwd.clone(),
                isolation: r.isolation_boundary,
            }),
            #[cfg(feature = "kubernetes")]
            Transport::Kubernetes => Endpoint::Pod(PodTarget {
                template: crate::upstream::kubernetes::PodTemplate {
                    image: r.image.clone().filter(|i| !i.is_empty())?,
                    // No port: the image's command speaks stdio, under `reflow bridge`.
                    serve: match r.port {
                        Some(port) => Serve::Http {
                            port,
                            health_path: r.health_path.clone(),
                        },
                        None => Serve::Stdio,
                    },
                    command: r.command.clone().filter(|c| !c.is_empty()),
                    args: r.args.clone(),
                    working_dir: r.cwd.clone(),
                    env: r.env.clone(),
                    resources: r.resources.clone(),
                },
                isolation: r.isolation_boundary,
            }),
            // Refused by the target service in such a build; a database written by another
            // build may still hold one.
            #[cfg(not(feature = "kubernetes"))]
            Transport::Kubernetes => return None,
        };
        Some(Self {
            id: r.id,
            name: r.name.to_string(),
            prefix: r.effective_prefix().to_string(),
            transport: r.transport,
            endpoint,
            statefulness: r.statefulness,
            timeout: r.timeout.unwrap_or(opts.default_timeout),
            auth_type: r.auth_type,
            auth_header_name: r.auth_header_name.clone(),
            restarts: r.restarts,
            max_message: opts.max_upstream_message,
        })
    }

    /// Stateful HTTP targets get one upstream session per downstream session. A stdio
    /// process is shared by every session its isolation key admits, whatever the statefulness.
    pub fn per_session(&self) -> bool {
        self.statefulness == Statefulness::Stateful && matches!(self.endpoint, Endpoint::Http(_))
    }

    /// A plain HTTP upstream: the one kind the circuit breaker guards (processes and pods have
    /// their own restart backoff).
    pub fn is_http(&self) -> bool {
        matches!(self.endpoint, Endpoint::Http(_))
    }

    pub fn stdio(&self) -> Option<&StdioCommand> {
        match &self.endpoint {
            Endpoint::Stdio(c) => Some(c),
            _ => None,
        }
    }

    #[cfg(feature = "kubernetes")]
    pub fn pod(&self) -> Option<&PodTarget> {
        match &self.endpoint {
            Endpoint::Pod(p) => Some(p),
            _ => None,
        }
    }
}
