{{- define "lockstep.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "lockstep.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "lockstep.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "lockstep.serviceAccountName" -}}
{{- default (include "lockstep.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The namespace lockstep watches when scoped. */}}
{{- define "lockstep.watchNamespace" -}}
{{- default .Release.Namespace .Values.scope.namespace -}}
{{- end -}}

{{/*
The rules lockstep needs in the namespaces it watches: exactly what the code uses (see the README's
RBAC section). Shared by the ClusterRole and the namespaced Role.
*/}}
{{- define "lockstep.namespacedRules" -}}
- apiGroups: [external-secrets.io]
  resources: [externalsecrets, secretstores]
  verbs: [get, list, watch]
# ESO's finalizer is removed from ExternalSecrets.
- apiGroups: [external-secrets.io]
  resources: [externalsecrets]
  verbs: [patch]
- apiGroups: [external-secrets.io]
  resources: [externalsecrets/status, secretstores/status]
  verbs: [patch]
# Target Secrets (server-side apply creates and updates; deletionPolicy Delete deletes) and the
# credentials Secrets stores name; managed Secrets are watched, metadata only.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch, delete]
# Templates kept in ConfigMaps (spec.target.template.templateFrom), read in the ExternalSecret's
# namespace at each sync, and CA bundles a kubernetes or webhook store names with caProvider type
# ConfigMap.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
# Web identity: the ServiceAccount's role annotation, and a short-lived token for it.
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get]
- apiGroups: [""]
  resources: [serviceaccounts/token]
  verbs: [create]
  {{- with .Values.rbac.tokenServiceAccounts }}
  resourceNames: {{ toJson . }}
  {{- end }}
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}
