//! Where a pod stands, read from its status: Ready (with its IP), still coming, or gone for
//! good; and the words for why it is not Ready (its Ready condition and container states), so
//! a timeout error tells the operator what to fix.

use k8s_openapi::api::core::v1::Pod;

/// One look at a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodState {
    Ready {
        ip: String,
    },
    /// Not Ready yet; says why as far as the status tells.
    Pending(String),
    /// Ended (phase Failed/Succeeded) or being deleted: it never serves again.
    Finished(String),
}

pub fn state(pod: &Pod) -> PodState {
    if pod.metadata.deletion_timestamp.is_some() {
        return PodState::Finished("it is being deleted".into());
    }
    let Some(status) = &pod.status else {
        return PodState::Pending("no status yet (not scheduled)".into());
    };
    let phase = status.phase.as_deref().unwrap_or("Unknown");
    if matches!(phase, "Failed" | "Succeeded") {
        let why = status
            .reason
            .clone()
            .or_else(|| status.message.clone())
            .unwrap_or_default();
        return PodState::Finished(format!("phase {phase} {why}").trim_end().to_string());
    }
    let ready = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready");
    if let (Some(c), Some(ip)) = (ready, status.pod_ip.as_ref())
        && c.status == "True"
        && phase == "Running"
    {
        return PodState::Ready { ip: ip.clone() };
    }
    PodState::Pending(explain(pod))
}

/// "phase Pending; Ready=False (ContainersNotReady: …); container mcp waiting: ImagePullBackOff (…)"
pub fn explain(pod: &Pod) -> String {
    let Some(status) = &pod.status else {
        return "no status yet (not scheduled)".into();
    };
    let mut parts = vec![format!(
        "phase {}",
        status.phase.as_deref().unwrap_or("Unknown")
    )];
    for c in status.conditions.iter().flatten() {
        if c.status == "True" {
            continue;
        }
        let mut text = format!("{}={}", c.type_, c.status);
        match (&c.reason, &c.message) {
            (Some(r), Some(m)) => text.push_str(&format!(" ({r}: {m})")),
            (Some(r), None) => text.push_str(&format!(" ({r})")),
            (None, Some(m)) => text.push_str(&format!(" ({m})")),
            (None, None) => {}
        }
        parts.push(text);
    }
    for cs in status.container_statuses.iter().flatten() {
        let Some(st) = &cs.state else { continue };
        if let Some(w) = &st.waiting {
            let mut text = format!(
                "container {} waiting: {}",
                cs.name,
                w.reason.as_deref().unwrap_or("unknown")
            );
            if let Some(m) = &w.message {
                text.push_str(&format!(" ({m})"));
            }
            parts.push(text);
        } else if let Some(t) = &st.terminated {
            parts.push(format!(
                "container {} terminated: exit {} {}",
                cs.name,
                t.exit_code,
                t.reason.as_deref().unwrap_or("")
            ));
        }
        if cs.restart_count > 0 {
            parts.push(format!(
                "container {} restarted {} times",
                cs.name, cs.restart_count
            ));
        }
    }
    if status.pod_ip.is_none() {
        parts.push("no pod IP yet".into());
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn ready_needs_running_ready_and_an_ip() {
        let ok = pod(serde_json::json!({
            "phase": "Running", "podIP": "10.0.0.7",
            "conditions": [{"type": "Ready", "status": "True"}],
        }));
        assert_eq!(
            state(&ok),
            PodState::Ready {
                ip: "10.0.0.7".into()
            }
        );
        let pulling = pod(serde_json::json!({
            "phase": "Pending",
            "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
            "containerStatuses": [{"name": "mcp", "image": "x", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff",
                "message": "Back-off pulling image \"x\""}}}],
        }));
        let PodState::Pending(why) = state(&pulling) else {
            panic!()
        };
        assert!(why.contains("Ready=False (ContainersNotReady)"), "{why}");
        assert!(
            why.contains("container mcp waiting: ImagePullBackOff"),
            "{why}"
        );
        let failed = pod(serde_json::json!({"phase": "Failed", "reason": "Evicted"}));
        assert!(matches!(state(&failed), PodState::Finished(w) if w.contains("Evicted")));
    }
}
