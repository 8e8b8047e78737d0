//! The rules only kubernetes targets have: an image, no URL, a port unless the command is a
//! stdio server, and resource requests and limits Kubernetes will accept.

use super::ServiceError;
use crate::store::TargetRecord;

/// The resources a target may set: what `kubernetes.pod_defaults.resources` knows too.
const RESOURCE_NAMES: &[&str] = &["cpu", "memory", "ephemeral-storage"];

/// What only a kubernetes target needs: an image reference, and no URL (each pod is reached
/// at its own address).
pub(super) fn check_pod_target(r: &TargetRecord) -> Result<(), ServiceError> {
    if r.url.is_some() {
        return Err(ServiceError::invalid(
            "url",
            "is not used by kubernetes targets: reflow reaches each pod at http://<pod>:<port>/mcp; remove it",
        ));
    }
    // Without a port the image's command is a stdio server run under `reflow bridge`: it must
    // be named, since the bridge cannot read the image's entrypoint.
    if r.port.is_none() && r.command.is_none() {
        return Err(ServiceError::invalid(
            "port",
            "is required for a kubernetes target whose image serves HTTP; a stdio server needs no port but its command (run under reflow bridge)",
        ));
    }
    if r.port.is_none() && r.health_path.is_some() {
        return Err(ServiceError::invalid(
            "health_path",
            "a kubernetes target without a port runs under reflow bridge, which is probed at its own /health; remove it",
        ));
    }
    if let Some(image) = &r.image
        && (image.is_empty()
            || image.len() > 512
            || image.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(ServiceError::invalid(
            "image",
            format!("{image:?} is not an image reference"),
        ));
    }
    Ok(())
}

/// Requests and limits: only on kubernetes targets, only known resource names, and values
/// that read as Kubernetes quantities (`100m`, `1.5`, `256Mi`, `1G`, `1e3`), so a typo fails
/// here and not at pod creation.
pub(super) fn check_resources(r: &TargetRecord) -> Result<(), ServiceError> {
    if r.resources.is_empty() {
        return Ok(());
    }
    if r.transport != crate::domain::Transport::Kubernetes {
        return Err(ServiceError::invalid(
            "resources",
            "only kubernetes targets have pods to give resources to",
        ));
    }
    for (kind, map) in [
        ("requests", &r.resources.requests),
        ("limits", &r.resources.limits),
    ] {
        for (name, qty) in map {
            if !RESOURCE_NAMES.contains(&name.as_str()) {
                return Err(ServiceError::invalid(
                    "resources",
                    format!("{kind}.{name}: use {}", RESOURCE_NAMES.join(", ")),
                ));
            }
            if !is_quantity(qty) {
                return Err(ServiceError::invalid(
                    "resources",
                    format!("{kind}.{name}: {qty:?} is not a quantity such as 100m, 0.5 or 256Mi"),
                ));
            }
        }
    }
    Ok(())
}

fn is_quantity(q: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E",
    ];
    let number = SUFFIXES.iter().find_map(|s| q.strip_suffix(s)).unwrap_or(q);
    let (mantissa, exponent) = match number.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (number, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((a, b)) => (digits(a) || a.is_empty()) && digits(b),
        None => digits(mantissa),
    };
    mantissa_ok && exponent.is_none_or(|e| digits(e.strip_prefix('-').unwrap_or(e)))
}

#[cfg(test)]
mod tests {
    use super::is_quantity;

    #[test]
    fn quantities() {
        for ok in ["100m", "0.5", "256Mi", "1G", "1e3", "2", ".5"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "1 Gi", "lots", "1GB", "-1", "Mi"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
