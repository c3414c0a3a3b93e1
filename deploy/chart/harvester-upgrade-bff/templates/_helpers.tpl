{{/* The chart's name, or nameOverride. */}}
{{- define "bff.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Every object's name: fullnameOverride, or the release name when it already
holds the chart's name (release "harvester-upgrade-bff" gives
"harvester-upgrade-bff"), or <release>-<name>. Cluster-scoped objects and the
objects made outside the release namespace carry it too, so two releases never
collide. 52 characters leave room for the longest suffix ("-webhook-tls", "-steve").
*/}}
{{- define "bff.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "bff.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "bff.labels" -}}
app.kubernetes.io/name: {{ include "bff.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: harvester-upgrade-bff
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The pods' own labels, which Service, PDB, NetworkPolicy and spread select: per release. */}}
{{- define "bff.selector" -}}
app.kubernetes.io/name: {{ include "bff.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: bff
{{- end -}}

{{/* The image: [registry/]repository:tag, the registry from image.registry or Rancher's global one. */}}
{{- define "bff.image" -}}
{{- $repository := required "image.repository is required: the image you built and pushed, e.g. --set image.repository=registry.example.com/harvester-upgrade-bff (docs/install.md)" .Values.image.repository -}}
{{- $global := dig "cattle" "systemDefaultRegistry" "" (.Values.global | default dict) -}}
{{- $registry := .Values.image.registry | default $global | trimSuffix "/" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion | toString -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" $registry $repository $tag -}}
{{- else -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Rancher mode: the dashboard's callers hold Rancher tokens (ui harvester or rancher). */}}
{{- define "bff.rancherMode" -}}
{{- if ne .Values.ui "none" }}true{{ end -}}
{{- end -}}

{{/* The read cache is on only with ui: none and readCache. */}}
{{- define "bff.readCache" -}}
{{- if and (eq .Values.ui "none") .Values.readCache }}true{{ end -}}
{{- end -}}

{{/* The Rancher cluster ids served. */}}
{{- define "bff.clusters" -}}
{{- if .Values.rancher.clusters -}}
{{- join "," .Values.rancher.clusters -}}
{{- else if eq .Values.ui "harvester" -}}
local
{{- end -}}
{{- end -}}

{{- define "bff.defaultCluster" -}}
{{- .Values.rancher.defaultCluster | default (first (splitList "," (include "bff.clusters" .))) -}}
{{- end -}}

{{/* Where Rancher's CA comes from: "secret NAME" or "configMap NAME". */}}
{{- define "bff.rancherCa" -}}
{{- if .Values.rancher.caSecret -}}
secret {{ .Values.rancher.caSecret }}
{{- else if .Values.rancher.caConfigMap -}}
configMap {{ .Values.rancher.caConfigMap }}
{{- else if eq .Values.ui "rancher" -}}
secret tls-rancher-internal-ca
{{- else -}}
configMap harvester-upgrade-bff-rancher-ca
{{- end -}}
{{- end -}}

{{/* The webhook's serving-certificate Secret (certManager and chart sources, and self). */}}
{{- define "bff.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "bff.fullname" .) -}}
{{- end -}}

{{/* The pods' priority class. */}}
{{- define "bff.priorityClassName" -}}
{{- if .Values.priorityClassName -}}
{{- .Values.priorityClassName -}}
{{- else if .Values.webhook.enabled -}}
system-cluster-critical
{{- end -}}
{{- end -}}

{{/* The port /metrics is served on. */}}
{{- define "bff.metricsPort" -}}
{{- if .Values.metrics.port }}{{ .Values.metrics.port }}{{ else }}8080{{ end -}}
{{- end -}}

{{/* The backend of the BFF's Ingress paths. */}}
{{- define "bff.backend" -}}
backend:
  service:
    name: {{ include "bff.fullname" . }}
    port:
      name: http
{{- end -}}

{{/* Rancher's Service, where the dashboard's create keeps going. */}}
{{- define "bff.rancherBackend" -}}
backend:
  service:
    name: rancher
    port:
      number: 80
{{- end -}}

{{/*
The Exact path that keeps the dashboard's create with Rancher must outrank the
BFF's Prefix on the same path. ingress-nginx does that by itself; Traefik ranks
by router priority, by default the rule's length, which puts the longer
PathPrefix rule first. This priority is above any rule's length.
*/}}
{{- define "bff.exactPriority" -}}
traefik.ingress.kubernetes.io/router.priority: {{ .Values.ingress.exactPathPriority | quote }}
{{- end -}}

{{/* Refuse, with one line, what the BFF itself refuses at start (values.schema.json refuses the shapes). */}}
{{- define "bff.validate" -}}
{{- $_ := include "bff.image" . -}}
{{- if not (has .Values.ui (list "harvester" "rancher" "none")) -}}
{{- fail "ui must be harvester, rancher or none" -}}
{{- end -}}
{{- if not (has .Values.authMode (list "passthrough" "impersonate")) -}}
{{- fail "authMode must be passthrough or impersonate" -}}
{{- end -}}
{{- if include "bff.rancherMode" . -}}
{{- if eq .Values.authMode "impersonate" -}}
{{- fail (printf "ui: %s needs authMode: passthrough (Rancher impersonates the caller itself); impersonate goes with ui: none" .Values.ui) -}}
{{- end -}}
{{- if not (include "bff.clusters" .) -}}
{{- fail "ui: rancher needs rancher.clusters: the ids of your Harvester clusters in Rancher (Cluster Management shows them)" -}}
{{- end -}}
{{- if not (has (include "bff.defaultCluster" .) (splitList "," (include "bff.clusters" .))) -}}
{{- fail "rancher.defaultCluster must be one of rancher.clusters" -}}
{{- end -}}
{{- if and (eq .Values.ui "rancher") (not .Values.rancher.hostname) -}}
{{- fail "ui: rancher needs rancher.hostname: the host name of your Rancher server" -}}
{{- end -}}
{{- end -}}
{{- if .Values.webhook.enabled -}}
{{- $source := .Values.webhook.certificates.source -}}
{{- if not (has $source (list "certManager" "chart" "self")) -}}
{{- fail "webhook.certificates.source must be certManager, chart or self" -}}
{{- end -}}
{{- if and (eq $source "certManager") (not .Values.webhook.certificates.skipCertManagerCheck) (not (.Capabilities.APIVersions.Has "cert-manager.io/v1")) -}}
{{- fail "webhook.certificates.source certManager needs cert-manager (the cert-manager.io/v1 API is not served): install it, or choose source chart or self, or set webhook.certificates.skipCertManagerCheck=true" -}}
{{- end -}}
{{- if eq (int .Values.webhook.port) 8080 -}}
{{- fail "webhook.port must differ from the API port 8080" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.metrics.port (eq (int .Values.metrics.port) 8080) -}}
{{- fail "metrics.port must differ from the API port 8080 (leave it empty to serve /metrics there)" -}}
{{- end -}}
{{- if and .Values.metrics.port .Values.webhook.enabled (eq (int .Values.metrics.port) (int .Values.webhook.port)) -}}
{{- fail "metrics.port must differ from webhook.port" -}}
{{- end -}}
{{- end -}}

{{/*
The guard table as BFF_GUARD_RESOURCES: "-*" (start empty), then one entry per
row of webhook.guardedResources (bff/admission/resources.py parses it).
*/}}
{{- define "bff.guardResources" -}}
{{- $entries := list "-*" }}
{{- range .Values.webhook.guardedResources }}
{{- $entry := printf "%s.%s/%s" .resource .group .version }}
{{- range .owners }}{{ $entry = printf "%s;owner=%s" $entry . }}{{ end }}
{{- $entry = printf "%s;keep=%s;mode=%s" $entry (join "|" .keep) (.mode | default "repair") }}
{{- $entries = append $entries $entry }}
{{- end }}
{{- join "," $entries }}
{{- end }}

{{/* A list of strings as a CEL list literal's items: 'a', 'b'. */}}
{{- define "bff.celList" -}}
{{- range $i, $v := . }}{{ if $i }}, {{ end }}'{{ $v }}'{{ end }}
{{- end }}
