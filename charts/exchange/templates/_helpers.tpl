{{/* Names: the release name, with the chart's name appended unless it already contains it. */}}
{{- define "exchange.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* A component's object name: exchange.name (dict "root" $ "component" "api"). */}}
{{- define "exchange.name" -}}
{{- printf "%s-%s" (include "exchange.fullname" .root) .component -}}
{{- end -}}

{{/* Labels that select a component's Pods; they never change across upgrades. */}}
{{- define "exchange.selectorLabels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "exchange.labels" -}}
{{ include "exchange.selectorLabels" . }}
app.kubernetes.io/part-of: exchange
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* One of the platform's images: exchange.image (dict "root" $ "component" "engine"). */}}
{{- define "exchange.image" -}}
{{- printf "%s/%s:%s" .root.Values.image.repository .component .root.Values.image.tag -}}
{{- end -}}

{{/* The restricted Pod Security Standard, Pod half: exchange.podSecurityContext 10001. */}}
{{- define "exchange.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The restricted Pod Security Standard, container half (the same for every container). */}}
{{- define "exchange.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "exchange.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The Secret holding each Redis user's password and URL (templates/redis-secret.yaml). */}}
{{- define "exchange.redisSecret" -}}
{{- include "exchange.name" (dict "root" . "component" "redis") -}}
{{- end -}}

{{/* An env entry NAME holding the Redis URL of USER (a user of files/redis-acl.yaml):
     exchange.redisEnv (dict "root" $ "name" "EXCHANGE_API_REDIS_URL" "user" "api"). */}}
{{- define "exchange.redisEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "exchange.redisSecret" .root }}
      key: {{ printf "%s-url" .user }}
{{- end -}}

{{/* The Secret and key holding the PostgreSQL URL. */}}
{{- define "exchange.databaseSecret" -}}
{{- if and (not .Values.timescaledb.enabled) .Values.externalDatabase.existingSecret -}}
{{- .Values.externalDatabase.existingSecret -}}
{{- else -}}
{{- include "exchange.name" (dict "root" . "component" "database") -}}
{{- end -}}
{{- end -}}

{{- define "exchange.databaseSecretKey" -}}
{{- if and (not .Values.timescaledb.enabled) .Values.externalDatabase.existingSecret -}}
{{- .Values.externalDatabase.existingSecretKey -}}
{{- else -}}
url
{{- end -}}
{{- end -}}

{{/* An env entry NAME holding the PostgreSQL URL. */}}
{{- define "exchange.databaseEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "exchange.databaseSecret" .root }}
      key: {{ include "exchange.databaseSecretKey" .root }}
{{- end -}}

{{- define "exchange.jwtSecret" -}}
{{- .Values.jwt.existingSecret | default (include "exchange.name" (dict "root" . "component" "jwt")) -}}
{{- end -}}

{{- define "exchange.jwtEnv" -}}
- name: EXCHANGE_JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "exchange.jwtSecret" . }}
      key: secret
{{- end -}}

{{- define "exchange.apiSecretsSecret" -}}
{{- .Values.apiSecrets.existingSecret | default (include "exchange.name" (dict "root" . "component" "api-secrets")) -}}
{{- end -}}

{{/* The key sealing API-key secrets in PostgreSQL, and the former ones (optional). */}}
{{- define "exchange.apiSecretsEnv" -}}
- name: EXCHANGE_API_SECRETS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "exchange.apiSecretsSecret" . }}
      key: key
- name: EXCHANGE_API_SECRETS_OLD_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ include "exchange.apiSecretsSecret" . }}
      key: oldKeys
      optional: true
{{- end -}}

{{/* Python writes temporary files; the root filesystem is read-only. */}}
{{- define "exchange.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}

{{- define "exchange.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "exchange.httpProbes" -}}
livenessProbe:
  httpGet: {path: /healthz, port: {{ .port }}}
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: {{ .port }}}
  periodSeconds: 5
  timeoutSeconds: 2
  failureThreshold: 2
{{- end -}}
