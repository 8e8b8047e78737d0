//! Kubernetes targets, the cluster side: the API calls that create a target's pod and Secret
//! (idempotently: AlreadyExists means another replica made it, use it), wait for it to be
//! Ready, reach it (pod IP or port-forward), list and delete reflow's pods by label, and watch
//! them so a pod that goes away fails its calls at once. The pool that decides when lives in
//! `gateway/pods`.

mod forward;
pub mod manifest;
pub mod ready;

use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Event, Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;

pub use forward::Forward;
pub use manifest::{PodPlan, PodTemplate};
pub use ready::PodState;

use crate::config::{ConnectMode, KubernetesSettings};
use manifest::{
    ANNOTATION_CREATED, LABEL_FINGERPRINT, LABEL_ISOLATION, LABEL_SPEC, LABEL_TARGET, MANAGED_BY,
};

/// How often a pod that is not Ready yet is looked at again.
const READY_POLL: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("kubernetes: cannot load the cluster configuration: {0}")]
    Config(String),
    #[error("kubernetes API: {0}")]
    Api(String),
    #[error("pod {namespace}/{pod} did not become Ready within {secs}s: {why}")]
    NotReady {
        namespace: String,
        pod: String,
        secs: u64,
        why: String,
    },
    #[error("pod {namespace}/{pod} ended: {why}")]
    Finished {
        namespace: String,
        pod: String,
        why: String,
    },
    #[error("port-forward to pod {pod}: {message}")]
    Forward { pod: String, message: String },
}

fn api_error(e: kube::Error) -> KubeError {
    KubeError::Api(e.to_string())
}

fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// A pod reflow manages, as listed.
#[derive(Clone, Debug)]
pub struct ManagedPod {
    pub name: String,
    pub target_id: String,
    pub spec: String,
    pub isolation: String,
    pub fingerprint: String,
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    pub state: PodState,
}

/// What the watch saw happen to one of reflow's pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodGone {
    pub name: String,
    /// Which incarnation: a pod deleted and created again under its name is another pod.
    pub uid: Option<String>,
    pub why: String,
}

/// One namespace of one cluster, reached with the configured credentials.
#[derive(Clone)]
pub struct Cluster {
    pods: Api<Pod>,
    secrets: Api<Secret>,
    events: Api<Event>,
    namespace: String,
    connect: ConnectMode,
}

impl Cluster {
    /// Loads `kubernetes.kubeconfig` if set, else infers (in-cluster, then `KUBECONFIG` or
    /// `~/.kube/config`). No request is made yet.
    pub async fn connect(settings: &KubernetesSettings) -> Result<Self, KubeError> {
        let config = match &settings.kubeconfig {
            Some(path) => {
                let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                    KubeError::Config(format!("kubernetes.kubeconfig {}: {e}", path.display()))
                })?;
                kube::Config::from_custom_kubeconfig(kc, &Default::default())
                    .await
                    .map_err(|e| {
                        KubeError::Config(format!("kubernetes.kubeconfig {}: {e}", path.display()))
                    })?
            }
            None => kube::Config::infer()
                .await
                .map_err(|e| KubeError::Config(e.to_string()))?,
        };
        let client =
            kube::Client::try_from(config).map_err(|e| KubeError::Config(e.to_string()))?;
        let ns = settings.namespace.as_str();
        Ok(Self {
            pods: Api::namespaced(client.clone(), ns),
            secrets: Api::namespaced(client.clone(), ns),
            events: Api::namespaced(client, ns),
            namespace: ns.to_string(),
            connect: ConnectMode::effective(settings.connect),
        })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Creates the plan's Secret and pod unless they exist. Returns the pod name and whether
    /// this call created the pod. The name holds the credential fingerprint, so an existing
    /// Secret of that name already holds these values.
    ///
    /// A pod of that name that has ended (evicted, failed) or is being deleted is replaced
    /// once it is gone, waiting at most `timeout` for that.
    pub async fn ensure(
        &self,
        plan: &PodPlan<'_>,
        timeout: Duration,
    ) -> Result<(String, bool), KubeError> {
        let name = plan.name();
        if let Some(secret) = plan.secret(&name) {
            match self.secrets.create(&PostParams::default(), &secret).await {
                Ok(_) => {}
                Err(e) if status_code(&e) == Some(409) => {}
                Err(e) => return Err(api_error(e)),
            }
        }
        if self.create_pod(plan, &name).await? {
            return Ok((name, true));
        }
        let Some(existing) = self.get_pod(&name).await? else {
            // Deleted between the two calls: make it anew.
            return Ok((name.clone(), self.create_pod(plan, &name).await?));
        };
        if !matches!(ready::state(&existing), PodState::Finished(_)) {
            return Ok((name, false));
        }
        if existing.metadata.deletion_timestamp.is_none() {
            self.delete_pod(&name).await?;
        }
        let deadline = Instant::now() + timeout;
        while self.get_pod(&name).await?.is_some() {
            if Instant::now() >= deadline {
                return Err(KubeError::NotReady {
                    namespace: self.namespace.clone(),
                    pod: name,
                    secs: timeout.as_secs().max(1),
                    why: "the ended pod of the same name is still being deleted".into(),
                });
            }
            tokio::time::sleep(READY_POLL).await;
        }
        Ok((name.clone(), self.create_pod(plan, &name).await?))
    }

    /// The pod, or None if absent. By status code: kube's `get_opt` also wants the reason
    /// `NotFound`, which not every API server (or emulator) spells that way.
    async fn get_pod(&self, name: &str) -> Result<Option<Pod>, KubeError> {
        match self.pods.get(name).await {
            Ok(p) => Ok(Some(p)),
            Err(e) if status_code(&e) == Some(404) => Ok(None),
            Err(e) => Err(api_error(e)),
        }
    }

    /// The uid of the pod of that name now, if there is one.
    pub async fn current_uid(&self, name: &str) -> Result<Option<String>, KubeError> {
        Ok(self.get_pod(name).await?.and_then(|p| p.metadata.uid))
    }

    /// Creates the pod; false if one of that name exists.
    async fn create_pod(&self, plan: &PodPlan<'_>, name: &str) -> Result<bool, KubeError> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match self
            .pods
            .create(&PostParams::default(), &plan.pod(name, &now))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if status_code(&e) == Some(409) => Ok(false),
            Err(e) => Err(api_error(e)),
        }
    }

    async fn delete_pod(&self, name: &str) -> Result<(), KubeError> {
        match self.pods.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) if status_code(&e) == Some(404) => Ok(()),
            Err(e) => Err(api_error(e)),
        }
    }

    /// Waits until the pod is Ready and returns its IP and uid; a clear error naming the pod
    /// and what its status says when it is not Ready in `timeout`, or ended.
    pub async fn wait_ready(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<(String, Option<String>), KubeError> {
        let deadline = Instant::now() + timeout;
        let mut why = loop {
            let why = match self.get_pod(name).await? {
                None => {
                    return Err(self.finished(name, "it was deleted while starting".into()));
                }
                Some(pod) => match ready::state(&pod) {
                    PodState::Ready { ip } => return Ok((ip, pod.metadata.uid.clone())),
                    PodState::Finished(w) => return Err(self.finished(name, w)),
                    PodState::Pending(w) => w,
                },
            };
            if Instant::now() + READY_POLL > deadline {
                break why;
            }
            tokio::time::sleep(READY_POLL).await;
        };
        if let Some(event) = self.last_event(name).await {
            why.push_str(&format!("; last event: {event}"));
        }
        Err(KubeError::NotReady {
            namespace: self.namespace.clone(),
            pod: name.to_string(),
            secs: timeout.as_secs().max(1),
            why,
        })
    }

    fn finished(&self, name: &str, why: String) -> KubeError {
        KubeError::Finished {
            namespace: self.namespace.clone(),
            pod: name.to_string(),
            why,
        }
    }

    /// The newest event about the pod, as "Reason: message" (best effort).
    async fn last_event(&self, pod: &str) -> Option<String> {
        let lp = ListParams::default().fields(&format!("involvedObject.name={pod}"));
        let list = self.events.list(&lp).await.ok()?;
        list.items
            .into_iter()
            // Filtered here too: not every API server honours field selectors on events.
            .filter(|e| e.involved_object.name.as_deref() == Some(pod))
            .max_by_key(|e| e.last_timestamp.as_ref().map(|t| t.0))
            .map(|e| {
                format!(
                    "{}: {}",
                    e.reason.unwrap_or_default(),
                    e.message.unwrap_or_default()
                )
            })
    }

    /// Where the MCP endpoint of a Ready pod is, and the forward that keeps it reachable.
    pub async fn endpoint(
        &self,
        name: &str,
        ip: &str,
        port: u16,
    ) -> Result<(url::Url, Option<Forward>), KubeError> {
        let (host, forward) = match self.connect {
            ConnectMode::PodIp => {
                // An IPv6 pod IP needs brackets in a URL.
                let host = if ip.contains(':') {
                    format!("[{ip}]:{port}")
                } else {
                    format!("{ip}:{port}")
                };
                (host, None)
            }
            ConnectMode::PortForward => {
                let fwd = Forward::start(self.pods.clone(), name.to_string(), port)
                    .await
                    .map_err(|e| KubeError::Forward {
                        pod: name.to_string(),
                        message: e.to_string(),
                    })?;
                (fwd.local.to_string(), Some(fwd))
            }
        };
        let url = url::Url::parse(&format!("http://{host}/mcp"))
            .map_err(|e| KubeError::Api(format!("pod address {host}: {e}")))?;
        Ok((url, forward))
    }

    /// Deletes a pod and its Secret; absent ones are fine (another replica was first).
    pub async fn delete(&self, name: &str) -> Result<(), KubeError> {
        let dp = DeleteParams::default();
        for result in [
            self.pods.delete(name, &dp).await.map(|_| ()),
            self.secrets.delete(name, &dp).await.map(|_| ()),
        ] {
            match result {
                Ok(()) => {}
                Err(e) if status_code(&e) == Some(404) => {}
                Err(e) => return Err(api_error(e)),
            }
        }
        Ok(())
    }

    fn selector() -> String {
        format!("{}={}", MANAGED_BY.0, MANAGED_BY.1)
    }

    fn managed(labels: Option<&std::collections::BTreeMap<String, String>>) -> bool {
        labels.and_then(|l| l.get(MANAGED_BY.0)).map(String::as_str) == Some(MANAGED_BY.1)
    }

    /// Every pod reflow manages in the namespace.
    pub async fn list(&self) -> Result<Vec<ManagedPod>, KubeError> {
        let lp = ListParams::default().labels(&Self::selector());
        let pods = self.pods.list(&lp).await.map_err(api_error)?;
        Ok(pods
            .items
            .iter()
            .filter(|p| Self::managed(p.metadata.labels.as_ref()))
            .map(|p| {
                let label = |k: &str| {
                    p.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(k))
                        .cloned()
                        .unwrap_or_default()
                };
                let created_at = p
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(ANNOTATION_CREATED))
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .or_else(|| {
                        p.metadata
                            .creation_timestamp
                            .as_ref()
                            .and_then(|t| chrono::DateTime::from_timestamp(t.0.as_second(), 0))
                    });
                ManagedPod {
                    name: p.metadata.name.clone().unwrap_or_default(),
                    target_id: label(LABEL_TARGET),
                    spec: label(LABEL_SPEC),
                    isolation: label(LABEL_ISOLATION),
                    fingerprint: label(LABEL_FINGERPRINT),
                    created_at,
                    state: ready::state(p),
                }
            })
            .collect())
    }

    /// Secrets reflow made whose pod is gone (a pod deleted by hand, a crash between the two
    /// creates): deleted, so credentials do not linger in the cluster. Secrets younger than
    /// `min_age` are spared: their pod may be being created right now.
    pub async fn delete_orphan_secrets(
        &self,
        live_pods: &[String],
        min_age: Duration,
    ) -> Result<usize, KubeError> {
        let now = chrono::Utc::now().timestamp();
        let lp = ListParams::default().labels(&Self::selector());
        let secrets = self.secrets.list(&lp).await.map_err(api_error)?;
        let mut n = 0;
        for s in &secrets.items {
            let Some(name) = &s.metadata.name else {
                continue;
            };
            let young = s
                .metadata
                .creation_timestamp
                .as_ref()
                .is_none_or(|t| now - t.0.as_second() < min_age.as_secs() as i64);
            if Self::managed(s.metadata.labels.as_ref()) && !live_pods.contains(name) && !young {
                match self.secrets.delete(name, &DeleteParams::default()).await {
                    Ok(_) => n += 1,
                    Err(e) if status_code(&e) == Some(404) => {}
                    Err(e) => return Err(api_error(e)),
                }
            }
        }
        Ok(n)
    }

    /// Pods of reflow that went away or stopped serving, as they happen. Runs until dropped;
    /// watch errors are retried with kube's default backoff.
    pub fn watch_gone(&self) -> impl Stream<Item = PodGone> + Send + 'static {
        let cfg = watcher::Config::default().labels(&Self::selector());
        watcher(self.pods.clone(), cfg)
            .default_backoff()
            .filter_map(|event| async move {
                let (pod, deleted) = match event {
                    Ok(watcher::Event::Delete(p)) => (p, true),
                    Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => (p, false),
                    Ok(_) => return None,
                    Err(e) => {
                        tracing::debug!(error = %e, "kubernetes pod watch");
                        return None;
                    }
                };
                if !Self::managed(pod.metadata.labels.as_ref()) {
                    return None;
                }
                let name = pod.metadata.name.clone()?;
                let uid = pod.metadata.uid.clone();
                if deleted {
                    return Some(PodGone {
                        name,
                        uid,
                        why: "the pod was deleted".into(),
                    });
                }
                match ready::state(&pod) {
                    PodState::Finished(why) => Some(PodGone { name, uid, why }),
                    _ => None,
                }
            })
    }
}
