"""Checks of one `helm template` output that the Kubernetes schemas cannot make: the chart's
own promises (wiring between objects, security settings, RBAC scope, what each values set
turns on). Run by deploy/helm/check as:

    python check_rendered.py SET RENDERED.yaml DOCKERFILE OUT_DIR

SET is the name of the values file under ci/ (without .yaml). Writes OUT_DIR/reflow.yaml (the
ConfigMap's reflow config) and OUT_DIR/env (the Secret's values as REFLOW_* lines, when the
chart made the Secret). Exits 1 with every failed check listed.
"""

import base64
import re
import sys

import yaml

SET, RENDERED, DOCKERFILE, OUT = sys.argv[1:5]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


docs = [d for d in yaml.safe_load_all(open(RENDERED)) if d]
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)


def one(kind):
    items = by_kind.get(kind, [])
    check(len(items) == 1, f"expected exactly one {kind}, got {len(items)}")
    return items[0] if items else {}


def absent(kind):
    check(kind not in by_kind, f"{kind} rendered but this values set should not have one")


# --- the Dockerfile's promises the chart relies on -----------------------------------------
dockerfile = open(DOCKERFILE).read()
user = re.search(r"^USER\s+(\d+)(?::(\d+))?\s*$", dockerfile, re.M)
check(user is not None, "Dockerfile: USER must be numeric (runAsNonRoot cannot verify a name)")
uid = int(user.group(1)) if user else -1
check(uid > 0, "Dockerfile: USER must not be root")
entry = re.search(r'^ENTRYPOINT\s+\["([^"]+)"\]', dockerfile, re.M)
copy_dest = re.search(r"^COPY --from=build \S+ (\S+)\s*$", dockerfile, re.M)
check(entry and copy_dest and entry.group(1) == copy_dest.group(1),
      "Dockerfile: ENTRYPOINT must run the binary COPY --from=build installs")
data_env = re.search(r"REFLOW_DATA_DIR=(\S+)", dockerfile)
volume = re.search(r'^VOLUME \["([^"]+)"\]', dockerfile, re.M)
check(data_env and volume and data_env.group(1) == volume.group(1),
      "Dockerfile: REFLOW_DATA_DIR must be the VOLUME")
check(re.search(r"REFLOW_SERVER_HOST=0\.0\.0\.0", dockerfile) is not None,
      "Dockerfile: the server must listen on 0.0.0.0 in the container")
check(re.search(r"cargo build --release --locked --bin reflow", dockerfile) is not None,
      "Dockerfile: cargo build --release --locked --bin reflow")
check(re.search(r"install -d -m 0700 -o %d -g %d %s" % (uid, uid, re.escape(volume.group(1) if volume else "?")), dockerfile) is not None,
      "Dockerfile: the data directory must belong to the USER")

# --- Deployment -----------------------------------------------------------------------------
dep = one("Deployment")
spec = dep.get("spec", {})
pod = spec.get("template", {}).get("spec", {})
containers = pod.get("containers", [])
check(len(containers) == 1, "one container")
c = containers[0] if containers else {}
psc = pod.get("securityContext", {})
csc = c.get("securityContext", {})
check(psc.get("runAsNonRoot") is True and csc.get("runAsNonRoot") is True, "runAsNonRoot")
check(psc.get("runAsUser") == uid, f"pod runAsUser {psc.get('runAsUser')} != Dockerfile USER {uid}")
check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccomp RuntimeDefault")
check(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
check(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation false")
check(csc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities drop ALL")
check(c.get("image", "").startswith("reflow:"), "image repository:tag")
args = c.get("args", [])
check(args[:1] == ["serve"], "the container runs `reflow serve`")
mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
volumes = {v["name"]: v for v in pod.get("volumes", [])}
config_path = args[args.index("--config") + 1] if "--config" in args else None
check(config_path is not None and config_path.rsplit("/", 1)[0] in mounts,
      "--config points into a mounted directory")
check(data_env is not None and data_env.group(1) in mounts, "the data directory is a volume")
check("/tmp" in mounts, "/tmp is writable (stdio children, read-only root)")
for path, name in mounts.items():
    check(name in volumes, f"volume {name} mounted at {path} exists")

ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready"), ("startupProbe", "/health")):
    get = c.get(probe, {}).get("httpGet", {})
    check(get.get("path") == path, f"{probe} on {path}")
    check(get.get("port") in ports, f"{probe} names a container port")
    hosts = [h["value"] for h in get.get("httpHeaders", []) if h["name"].lower() == "host"]
    check(hosts == ["localhost"], f"{probe} sends Host: localhost (reflow refuses the pod IP)")

env = {e["name"]: e for e in c.get("env", [])}
for name in ("REFLOW_AUTH_JWT_SECRET", "REFLOW_ENCRYPTION_KEY"):
    check("secretKeyRef" in env.get(name, {}).get("valueFrom", {}), f"{name} from a Secret")
check(not any("value" in e and e["name"].startswith("REFLOW_") and e["name"] != "REFLOW_CONFIG"
              for e in env.values()), "no REFLOW_* value in clear in the pod spec")

labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
check(spec.get("selector", {}).get("matchLabels", {}).items() <= labels.items(),
      "the Deployment's selector matches its pods")
check(labels.get("app.kubernetes.io/managed-by") != "reflow",
      "reflow's own pods must not carry the label of the MCP pods it manages")

# --- Service, ConfigMap, Secret -------------------------------------------------------------
svc = one("Service")
check(svc.get("spec", {}).get("selector", {}).items() <= labels.items(), "the Service selects the pods")
svc_ports = {p["name"]: p for p in svc.get("spec", {}).get("ports", [])}
for name, p in svc_ports.items():
    check(p.get("targetPort") in ports, f"Service port {name} targets a container port")

cm = one("ConfigMap")
check(pod and cm and volumes.get("config", {}).get("configMap", {}).get("name") == cm["metadata"]["name"],
      "the config volume is the chart's ConfigMap")
config_text = cm.get("data", {}).get("reflow.yaml", "")
config = yaml.safe_load(config_text) or {}
open(f"{OUT}/reflow.yaml", "w").write(config_text)
check(config.get("server", {}).get("host") == "0.0.0.0", "config server.host 0.0.0.0")
check(config.get("server", {}).get("port") == ports.get("http"), "config server.port is the container port")
check(config.get("data_dir") == (data_env.group(1) if data_env else None), "config data_dir is the volume")
allowed = config.get("server", {}).get("allowed_hosts", [])
check("localhost" in allowed, "allowed_hosts has localhost (the probes' Host)")
svc_name = svc.get("metadata", {}).get("name")
check(any(h.startswith(f"{svc_name}.") and h.endswith(".svc") for h in allowed),
      "allowed_hosts has the Service's DNS name")
for secret_key in (("auth", "jwt_secret"), ("encryption", "key"), ("database", "url"), ("metrics", "token")):
    check(secret_key[1] not in config.get(secret_key[0], {}), f"no {'.'.join(secret_key)} in the ConfigMap")

metrics_port = ports.get("metrics")
if metrics_port:
    check(config.get("metrics", {}).get("listen") == f"0.0.0.0:{metrics_port}",
          "metrics.listen is the metrics container port")

secret_names = set()
secrets = by_kind.get("Secret", [])
env_lines = []
for s in secrets:
    secret_names.add(s["metadata"]["name"])
    data = {k: base64.b64decode(v).decode() for k, v in s.get("data", {}).items()}
    check(len(data.get("jwt-secret", "")) >= 32, "jwt-secret has 32+ bytes")
    key = data.get("encryption-key", "")
    check(len(base64.b64decode(key)) == 32 if key else False, "encryption-key is 32 bytes, base64")
    for k, var in (("jwt-secret", "REFLOW_AUTH_JWT_SECRET"), ("encryption-key", "REFLOW_ENCRYPTION_KEY"),
                   ("database-url", "REFLOW_DATABASE_URL"), ("metrics-token", "REFLOW_METRICS_TOKEN")):
        if k in data:
            env_lines.append(f"{var}={data[k]}")
open(f"{OUT}/env", "w").write("\n".join(env_lines) + "\n")
for name, e in env.items():
    ref = e.get("valueFrom", {}).get("secretKeyRef")
    if ref and SET != "existing-secret":
        check(ref["name"] in secret_names, f"{name} refers to a rendered Secret")
        key_present = any(ref["key"] in s.get("data", {}) for s in secrets if s["metadata"]["name"] == ref["name"])
        check(key_present or ref.get("optional"), f"{name}: key {ref['key']} is in the Secret")

# --- ServiceMonitor (no offline schema: its fields are checked here) -----------------------
sm_list = by_kind.get("ServiceMonitor", [])
for sm in sm_list:
    check(sm.get("apiVersion") == "monitoring.coreos.com/v1", "ServiceMonitor apiVersion")
    sel = sm.get("spec", {}).get("selector", {}).get("matchLabels", {})
    check(sel and sel.items() <= svc["metadata"]["labels"].items(), "ServiceMonitor selects the Service")
    eps = sm.get("spec", {}).get("endpoints", [])
    check(len(eps) == 1, "one ServiceMonitor endpoint")
    allowed_fields = {"port", "path", "scheme", "interval", "scrapeTimeout", "authorization"}
    for ep in eps:
        check(set(ep) <= allowed_fields, f"ServiceMonitor endpoint fields {sorted(set(ep) - allowed_fields)}")
        check(ep.get("port") in svc_ports, "ServiceMonitor scrapes a named Service port")
        check(ep.get("port") == "metrics", "ServiceMonitor scrapes the metrics port (any Host)")
        check(ep.get("path") == "/metrics", "ServiceMonitor path /metrics")
        auth = ep.get("authorization")
        if config.get("metrics", {}).get("public"):
            check(auth is None, "no token sent when metrics are public")
        else:
            check(auth and auth.get("type") == "Bearer" and set(auth.get("credentials", {})) == {"name", "key"},
                  "ServiceMonitor sends a bearer token from a Secret")
            cred = (auth or {}).get("credentials", {})
            if SET != "existing-secret":
                check(any(s["metadata"]["name"] == cred.get("name") and cred.get("key") in s.get("data", {})
                          for s in secrets), "the ServiceMonitor's token is in the rendered Secret")
                token_env = env.get("REFLOW_METRICS_TOKEN", {}).get("valueFrom", {}).get("secretKeyRef", {})
                check(token_env.get("name") == cred.get("name") and token_env.get("key") == cred.get("key"),
                      "reflow reads the same metrics token the ServiceMonitor sends")

# --- RBAC and NetworkPolicy: only with MCP pods --------------------------------------------
mcp = config.get("kubernetes", {}).get("enabled") is True
if not mcp:
    check(pod.get("automountServiceAccountToken") is False, "no service-account token without MCP pods")
    for kind in ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "NetworkPolicy"):
        absent(kind)
else:
    absent("ClusterRole")
    absent("ClusterRoleBinding")
    sa = one("ServiceAccount")
    role = one("Role")
    rb = one("RoleBinding")
    ns = config["kubernetes"].get("namespace")
    check(pod.get("serviceAccountName") == sa.get("metadata", {}).get("name"), "pods run as the ServiceAccount")
    check(pod.get("automountServiceAccountToken") is True, "the token is mounted for the API calls")
    check(role.get("metadata", {}).get("namespace") == ns, "the Role is in the MCP namespace")
    check(rb.get("metadata", {}).get("namespace") == ns, "the RoleBinding is in the MCP namespace")
    check(rb.get("roleRef", {}).get("name") == role.get("metadata", {}).get("name"), "RoleBinding binds the Role")
    subj = rb.get("subjects", [{}])[0]
    check(subj.get("name") == sa["metadata"]["name"] and subj.get("namespace") == sa["metadata"]["namespace"],
          "RoleBinding names the ServiceAccount")
    granted = {}
    for rule in role.get("rules", []):
        check(rule.get("apiGroups") == [""], "core API group only")
        for r in rule.get("resources", []):
            granted[r] = set(rule.get("verbs", []))
    expected = {
        "pods": {"get", "list", "watch", "create", "delete", "patch"},
        "secrets": {"get", "list", "create", "patch", "delete"},
        "events": {"get", "list"},
    }
    if config["kubernetes"].get("connect") == "port_forward":
        expected["pods/portforward"] = {"get", "create"}
    check(granted == expected, f"Role grants exactly {expected}, got {granted}")
    check(not any("*" in v for v in granted.values()), "no wildcard verbs")
    nps = by_kind.get("NetworkPolicy", [])
    for np in nps:
        check(np["metadata"]["namespace"] == ns, "NetworkPolicy in the MCP namespace")
        check(np["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/managed-by": "reflow"}},
              "NetworkPolicy selects the MCP pods reflow labels")
        first = np["spec"]["ingress"][0]["from"][0]
        check(first.get("podSelector", {}).get("matchLabels", {}).items() <= labels.items(),
              "NetworkPolicy admits the reflow pods")
        check(first.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
              == dep["metadata"]["namespace"], "NetworkPolicy admits them from the release namespace only")

# --- what each values set must turn on ------------------------------------------------------
expect = {
    "sqlite-default": dict(replicas=1, strategy="Recreate", pvc=True, ingress=False, sm=False, np=False),
    "postgres-ha": dict(replicas=3, strategy="RollingUpdate", pvc=False, ingress=True, sm=True, np=False),
    "mcp-pods": dict(replicas=1, strategy="Recreate", pvc=True, ingress=False, sm=False, np=True),
    "existing-secret": dict(replicas=2, strategy="RollingUpdate", pvc=False, ingress=False, sm=True, np=False),
}.get(SET)
check(expect is not None, f"no expectations written for values set {SET}")
if expect:
    check(spec.get("replicas") == expect["replicas"], f"replicas {spec.get('replicas')} != {expect['replicas']}")
    check(spec.get("strategy", {}).get("type") == expect["strategy"], "rollout strategy")
    check(("PersistentVolumeClaim" in by_kind) == expect["pvc"], "PVC only for SQLite")
    data_vol = volumes.get(mounts.get(data_env.group(1) if data_env else "", ""), {})
    check(("persistentVolumeClaim" in data_vol) == expect["pvc"], "data volume kind")
    check(("Ingress" in by_kind) == expect["ingress"], "Ingress presence")
    check(bool(sm_list) == expect["sm"], "ServiceMonitor presence")
    check(("NetworkPolicy" in by_kind) == expect["np"], "NetworkPolicy presence")
    check(("Secret" in by_kind) == (SET != "existing-secret"), "the chart's Secret unless existingSecret")
    pdb = one("PodDisruptionBudget")
    check(pdb.get("spec", {}).get("selector", {}).get("matchLabels", {}).items() <= labels.items(),
          "the PodDisruptionBudget selects the pods")
    if expect["ingress"]:
        ing = one("Ingress")
        hosts = [r["host"] for r in ing["spec"]["rules"]]
        check(all(h in allowed for h in hosts), "every Ingress host is in server.allowed_hosts")
        check(config["server"].get("public_url") == f"https://{hosts[0]}", "public_url from the TLS host")
        backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        check(backend["name"] == svc_name and backend["port"]["name"] in svc_ports, "Ingress → Service port")

if failures:
    print(f"FAIL {SET}: {len(failures)} check(s):")
    for f in failures:
        print(f"  - {f}")
    sys.exit(1)
print(f"ok   {SET}: {len(docs)} objects ({', '.join(sorted(by_kind))}) meet the chart's checks")
