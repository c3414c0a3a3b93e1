{{/* Labels every object carries, as in deploy/. */}}
{{- define "bff.labels" -}}
app.kubernetes.io/name: harvester-upgrade-bff
app.kubernetes.io/part-of: harvester-upgrade-bff
{{- end -}}

{{/* The pods' own labels, which Service, PDB, NetworkPolicy and spread select. */}}
{{- define "bff.selector" -}}
app.kubernetes.io/name: harvester-upgrade-bff
app.kubernetes.io/component: bff
{{- end -}}

{{/* The backend of the BFF's Ingress paths. */}}
{{- define "bff.backend" -}}
backend:
  service:
    name: harvester-upgrade-bff
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

{{/* Refuse combinations the BFF itself refuses at start. */}}
{{- define "bff.validate" -}}
{{- if not (has .Values.authMode (list "passthrough" "impersonate")) -}}
{{- fail "authMode must be passthrough or impersonate" -}}
{{- end -}}
{{- if not (has .Values.ui (list "harvester" "rancher")) -}}
{{- fail "ui must be harvester or rancher" -}}
{{- end -}}
{{- if .Values.rancher.enabled -}}
{{- if .Values.readCache -}}
{{- fail "rancher.enabled needs readCache: false (the cache watches as the BFF, not as each caller)" -}}
{{- end -}}
{{- if eq .Values.authMode "impersonate" -}}
{{- fail "rancher.enabled needs authMode: passthrough (Rancher impersonates the caller itself)" -}}
{{- end -}}
{{- if not (has .Values.rancher.defaultCluster .Values.rancher.clusters) -}}
{{- fail "rancher.defaultCluster must be one of rancher.clusters" -}}
{{- end -}}
{{- if and (not .Values.rancher.caSecret) (not .Values.rancher.caConfigMap) -}}
{{- fail "rancher.enabled needs rancher.caSecret or rancher.caConfigMap (TLS to Rancher is always verified)" -}}
{{- end -}}
{{- else if eq .Values.ui "rancher" -}}
{{- fail "ui: rancher needs rancher.enabled: true (Rancher's users hold Rancher tokens)" -}}
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
