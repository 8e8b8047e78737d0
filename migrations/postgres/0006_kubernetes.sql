-- Kubernetes pods are instances too: `namespace/name` of the pod, NULL for stdio processes
-- (which have a pid instead). Pods are shared by every replica, so their rows are not tied to
-- the replica that created them.
ALTER TABLE instances ADD COLUMN pod TEXT;
-- A kubernetes target's own resource requests and limits ({"requests": {"cpu": "100m"},
-- "limits": {"memory": "1Gi"}}), over kubernetes.pod_defaults.resources key by key.
ALTER TABLE targets ADD COLUMN resources JSONB NOT NULL DEFAULT '{}';
