{{/* Names and labels. */}}
{{- define "reflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "reflow.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "reflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "reflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Note: never app.kubernetes.io/managed-by: reflow — that label marks the MCP pods reflow creates. */}}
{{- define "reflow.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "reflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "reflow.secretName" -}}
{{- default (include "reflow.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "reflow.mcpNamespace" -}}
{{- default .Release.Namespace .Values.mcpPods.namespace -}}
{{- end -}}

{{- define "reflow.serviceAccountName" -}}
{{- default (include "reflow.fullname" .) .Values.mcpPods.serviceAccount.name -}}
{{- end -}}

{{/* The chart-managed paths. They must agree with the Dockerfile (deploy/helm/check compares). */}}
{{- define "reflow.dataDir" -}}/var/lib/reflow{{- end -}}
{{- define "reflow.configPath" -}}/etc/reflow/reflow.yaml{{- end -}}
{{- define "reflow.containerPort" -}}8080{{- end -}}

{{/*
Refuses values that cannot work. Included by every template that depends on them, so
`helm template` and `helm install` fail with the reason before anything is applied.
*/}}
{{- define "reflow.validate" -}}
{{- $db := .Values.database -}}
{{- if not (has $db.type (list "sqlite" "postgres")) -}}
{{- fail (printf "database.type must be sqlite or postgres, not %q" $db.type) -}}
{{- end -}}
{{- if and (eq $db.type "sqlite") (gt (int .Values.replicaCount) 1) -}}
{{- fail (printf "replicaCount is %d but database.type is sqlite: SQLite serves one replica. Use database.type: postgres for more (README.md)" (int .Values.replicaCount)) -}}
{{- end -}}
{{- if and (eq $db.type "postgres") (not $db.url) (not $db.existingSecret) (not .Values.secrets.existingSecret) -}}
{{- fail "database.type is postgres but no URL: set database.url, database.existingSecret, or secrets.existingSecret with a database-url key" -}}
{{- end -}}
{{- if and (eq $db.type "sqlite") (or $db.url $db.existingSecret) -}}
{{- fail "database.url / database.existingSecret are for database.type: postgres" -}}
{{- end -}}
{{- if and $db.url (not (hasPrefix "postgres" $db.url)) -}}
{{- fail "database.url must be a postgres:// or postgresql:// URL" -}}
{{- end -}}
{{- if .Values.secrets.existingSecret -}}
{{- range $k, $v := dict "secrets.jwtSecret" .Values.secrets.jwtSecret "secrets.encryptionKey" .Values.secrets.encryptionKey "database.url" .Values.database.url "metrics.token" .Values.metrics.token -}}
{{- if $v -}}
{{- fail (printf "%s is set but secrets.existingSecret is used, so the chart makes no Secret to hold it: put it into your Secret instead" $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $c := .Values.config | default dict -}}
{{- range $k := list "data_dir" "kubernetes" -}}
{{- if hasKey $c $k -}}
{{- fail (printf "config.%s is set by the chart (see values.yaml: persistence, mcpPods)" $k) -}}
{{- end -}}
{{- end -}}
{{- range $pair := list (list "server" "host") (list "server" "port") (list "metrics" "listen") (list "metrics" "public") (list "auth" "jwt_secret") (list "encryption" "key") (list "encryption" "key_file") (list "database" "url") (list "metrics" "token") -}}
{{- $section := get $c (index $pair 0) | default dict -}}
{{- if hasKey $section (index $pair 1) -}}
{{- fail (printf "config.%s.%s is set by the chart: use the chart's values (secrets, database, metrics, service) instead" (index $pair 0) (index $pair 1)) -}}
{{- end -}}
{{- end -}}
{{- if .Values.secrets.jwtSecret -}}
{{- if lt (len .Values.secrets.jwtSecret) 32 -}}
{{- fail "secrets.jwtSecret must be at least 32 bytes" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.metrics.token (lt (len .Values.metrics.token) 16) -}}
{{- fail "metrics.token must be at least 16 characters" -}}
{{- end -}}
{{- $sm := .Values.metrics.serviceMonitor -}}
{{- if $sm.enabled -}}
{{- if not .Values.metrics.port -}}
{{- fail "metrics.serviceMonitor needs metrics.port (the port it scrapes)" -}}
{{- end -}}
{{- if not (or .Values.metrics.public .Values.metrics.token .Values.secrets.existingSecret $sm.tokenSecret.name) -}}
{{- fail "metrics.serviceMonitor: /metrics needs a token; set metrics.token (or secrets.existingSecret / metrics.serviceMonitor.tokenSecret with a metrics-token key), or metrics.public: true" -}}
{{- end -}}
{{- end -}}
{{- if .Values.mcpPods.enabled -}}
{{- if not (has .Values.mcpPods.connect (list "pod_ip" "port_forward")) -}}
{{- fail (printf "mcpPods.connect must be pod_ip or port_forward, not %q" .Values.mcpPods.connect) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* reflow's configuration file: the user's config with the chart-managed keys laid over it. */}}
{{- define "reflow.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) -}}
{{- $server := get $cfg "server" | default dict -}}
{{- $fullname := include "reflow.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $hosts := list "localhost" "127.0.0.1" "::1" $fullname (printf "%s.%s" $fullname $ns) (printf "%s.%s.svc" $fullname $ns) (printf "%s.%s.svc.%s" $fullname $ns .Values.clusterDomain) -}}
{{- if .Values.ingress.enabled -}}
{{- range .Values.ingress.hosts -}}
{{- if .host -}}{{- $hosts = append $hosts .host -}}{{- end -}}
{{- end -}}
{{- if and (not (hasKey $server "public_url")) .Values.ingress.hosts -}}
{{- $first := (index .Values.ingress.hosts 0).host -}}
{{- if $first -}}
{{- $scheme := "http" -}}
{{- range .Values.ingress.tls -}}{{- if has $first (.hosts | default list) -}}{{- $scheme = "https" -}}{{- end -}}{{- end -}}
{{- $_ := set $server "public_url" (printf "%s://%s" $scheme $first) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $hosts = concat $hosts ($server.allowed_hosts | default list) | uniq -}}
{{- $_ := set $server "host" "0.0.0.0" -}}
{{- $_ := set $server "port" (include "reflow.containerPort" . | int) -}}
{{- $_ := set $server "allowed_hosts" $hosts -}}
{{- $_ := set $cfg "server" $server -}}
{{- $_ := set $cfg "data_dir" (include "reflow.dataDir" .) -}}
{{- $metrics := get $cfg "metrics" | default dict -}}
{{- $_ := set $metrics "public" (.Values.metrics.public | default false) -}}
{{- if .Values.metrics.port -}}
{{- $_ := set $metrics "listen" (printf "0.0.0.0:%d" (int .Values.metrics.port)) -}}
{{- end -}}
{{- $_ := set $cfg "metrics" $metrics -}}
{{- if .Values.mcpPods.enabled -}}
{{- $m := .Values.mcpPods -}}
{{- $pd := deepCopy $m.pod_defaults -}}
{{- if not $pd.node_selector -}}{{- $_ := unset $pd "node_selector" -}}{{- end -}}
{{- if not $pd.runtime_class_name -}}{{- $_ := unset $pd "runtime_class_name" -}}{{- end -}}
{{- $k := dict "enabled" true "namespace" (include "reflow.mcpNamespace" .) "connect" $m.connect "idle_ttl" $m.idle_ttl "max_lifetime" $m.max_lifetime "gc_interval" $m.gc_interval "max_instances" (int $m.max_instances) "ready_timeout" $m.ready_timeout "pod_defaults" $pd -}}
{{- $_ := set $cfg "kubernetes" $k -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* The probes' common part: reflow refuses a Host it does not know, and the kubelet sends the pod IP. */}}
{{- define "reflow.probe" -}}
httpGet:
  path: {{ .path }}
  port: http
  httpHeaders:
    - name: Host
      value: localhost
{{- end -}}
