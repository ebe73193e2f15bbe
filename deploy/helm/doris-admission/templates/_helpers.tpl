{{/*
Labels of every object: the kustomize base's app.kubernetes.io/name, which the selectors use,
and Helm's own. Selectors use only app.kubernetes.io/name, as in the base.
*/}}
{{- define "doris-admission.labels" -}}
app.kubernetes.io/name: doris-admission
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "doris-admission.selectorLabels" -}}
app.kubernetes.io/name: doris-admission
{{- end }}

{{/*
certManager is "true" when cert-manager issues the certificates; it fails on an unknown
certificates.mode.
*/}}
{{- define "doris-admission.certManager" -}}
{{- $mode := .Values.certificates.mode -}}
{{- if eq $mode "cert-manager" -}}
true
{{- else if ne $mode "self-managed" -}}
{{- fail (printf "certificates.mode is %q: it must be self-managed (the server manages its certificates) or cert-manager" $mode) -}}
{{- end -}}
{{- end }}

{{/*
The namespaces never sent to the webhooks: kube-system, kube-node-lease, the release namespace
and webhooks.excludeNamespaces, sorted as the server writes them.
*/}}
{{- define "doris-admission.excludedNamespaces" -}}
{{- concat (list "kube-system" "kube-node-lease" .Release.Namespace) (.Values.webhooks.excludeNamespaces | default list) | uniq | sortAlpha | toJson -}}
{{- end }}

{{/* The Secret cert-manager writes the serving certificate to. */}}
{{- define "doris-admission.servingSecret" -}}
doris-admission-serving-tls
{{- end }}

{{/*
liveWebhooks are the webhooks the server added after the first (the anchor) of the cluster's
configuration of kind doris-admission, one per group of policies, as a YAML list, or nothing when
there is no such configuration yet or no cluster (helm template). An upgrade carries them over, so
it neither stops enforcement until the server rewrites them nor conflicts with the server.
*/}}
{{- define "doris-admission.liveWebhooks" -}}
{{- $live := lookup "admissionregistration.k8s.io/v1" .kind "" "doris-admission" -}}
{{- range rest (dig "webhooks" list $live) }}
- {{ toJson . }}
{{- end -}}
{{- end }}
