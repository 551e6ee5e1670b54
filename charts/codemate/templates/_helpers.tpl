{{- define "codemate.labels" -}}
app.kubernetes.io/part-of: codemate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "codemate.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "codemate.operator" -}}{{ .Release.Name }}-operator{{- end -}}
{{- define "codemate.webhook" -}}{{ .Release.Name }}-webhook{{- end -}}
{{- define "codemate.webhookSecret" -}}
{{- .Values.webhook.secret.existingSecret | default (printf "%s-webhook-secret" .Release.Name) -}}
{{- end -}}

{{/* The pod security context of both servers: the restricted Pod Security Standard. */}}
{{- define "codemate.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end -}}
{{- define "codemate.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/*
The documents of a file in manifests/ (linked under files/, so the chart and the manifests are one source),
with the names it hard-codes made this release's. Returns {"items": [...]} as YAML.
*/}}
{{- define "codemate.manifest" -}}
{{- $root := index . 0 -}}
{{- $text := $root.Files.Get (printf "files/%s" (index . 1)) -}}
{{- $text = $text | replace "codemate-system" $root.Release.Namespace -}}
{{- $text = $text | replace "codemate-operator" (include "codemate.operator" $root) -}}
{{- $text = $text | replace "codemate-webhook" (include "codemate.webhook" $root) -}}
{{- $items := list -}}
{{- range $doc := splitList "\n---\n" $text -}}
{{- $object := fromYaml $doc -}}
{{- if $object.kind -}}{{- $items = append $items $object -}}{{- end -}}
{{- end -}}
{{- toYaml (dict "items" $items) -}}
{{- end -}}

{{/* One object of a manifest file by kind (and name, when given). */}}
{{- define "codemate.manifestObject" -}}
{{- $root := index . 0 -}}{{- $kind := index . 2 -}}{{- $name := index . 3 -}}
{{- range (include "codemate.manifest" (list $root (index . 1)) | fromYaml).items -}}
{{- if and (eq .kind $kind) (or (not $name) (eq .metadata.name $name)) -}}{{- toYaml . -}}{{- end -}}
{{- end -}}
{{- end -}}

{{/* Renders a manifest object with the chart's labels added to its own. */}}
{{- define "codemate.withLabels" -}}
{{- $root := index . 0 -}}{{- $object := index . 1 -}}
{{- $labels := merge (include "codemate.labels" $root | fromYaml) ($object.metadata.labels | default dict) -}}
{{- $_ := set $object.metadata "labels" $labels -}}
{{- toYaml $object -}}
{{- end -}}
