{{/* vim: set filetype=mustache: */}}

{{- define "auth-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "auth-service.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "auth-service.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels shared by every object of the release. */}}
{{- define "auth-service.labels" -}}
helm.sh/chart: {{ include "auth-service.chart" . }}
app.kubernetes.io/name: {{ include "auth-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: auth-service
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of the whole release (used by the default-deny NetworkPolicy). */}}
{{- define "auth-service.releaseSelectorLabels" -}}
app.kubernetes.io/name: {{ include "auth-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector labels of one component: call with (dict "root" $ "component" "server"). */}}
{{- define "auth-service.selectorLabels" -}}
{{ include "auth-service.releaseSelectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "auth-service.componentLabels" -}}
{{ include "auth-service.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "auth-service.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "auth-service.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "auth-service.secretName" -}}
{{- default (printf "%s-secrets" (include "auth-service.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{- define "auth-service.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "auth-service.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Image reference: a digest, when given, wins over the tag. Call with an image values map. */}}
{{- define "auth-service.imageRef" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .default .image.tag) }}
{{- end }}
{{- end }}

{{- define "auth-service.image" -}}
{{- include "auth-service.imageRef" (dict "image" .Values.image "default" .Chart.AppVersion) }}
{{- end }}

{{/*
checkov skip annotations (checkov reads `checkov.io/skip<N>: CHECK_ID=reason` from
metadata.annotations). Every skip carries its reason; they are only emitted when the values
really trigger the check. Call with (dict "root" $ "image" <image values> "extra" (list ...)).
*/}}
{{- define "auth-service.checkovSkips" -}}
{{- $skips := list }}
{{- if not .image.digest }}
{{- $skips = append $skips "CKV_K8S_43=image is pinned by an immutable release tag; set image.digest to pin by digest (production release pipelines do)" }}
{{- end }}
{{- if ne .image.pullPolicy "Always" }}
{{- $skips = append $skips (printf "CKV_K8S_15=pullPolicy %s chosen in values for local clusters (kind/minikube load images without a registry)" .image.pullPolicy) }}
{{- end }}
{{- range .extra }}
{{- $skips = append $skips . }}
{{- end }}
{{- range $i, $s := $skips }}
checkov.io/skip{{ add1 $i }}: {{ $s | quote }}
{{- end }}
{{- end }}

{{/* Pod-level security context: non-root 10001, seccomp RuntimeDefault. */}}
{{- define "auth-service.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container-level security context: read-only root, no privilege escalation, no capabilities. */}}
{{- define "auth-service.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "auth-service.secretMountPath" -}}/run/secrets/auth-service{{- end }}

{{/*
Environment shared by every auth-service container (server, migration, backup). Secrets are
passed as files (`*_FILE`), never as environment values.
*/}}
{{- define "auth-service.env" -}}
{{- $secretDir := include "auth-service.secretMountPath" . -}}
- name: AUTH_ENV
  value: {{ .Values.environment | quote }}
- name: AUTH_CONFIG
  value: /etc/auth-service/config.yaml
- name: AUTH_DATA_DIR
  value: /var/lib/auth-service
- name: AUTH_SERVER__HOST
  value: "0.0.0.0"
- name: AUTH_SERVER__PORT
  value: "8000"
- name: AUTH_SERVER__MANAGEMENT_HOST
  value: "0.0.0.0"
- name: AUTH_SERVER__MANAGEMENT_PORT
  value: "9000"
- name: AUTH_SERVER__WORKERS
  value: {{ .Values.server.workers | quote }}
- name: AUTH_SERVER__PUBLIC_URL
  value: {{ .Values.server.publicUrl | quote }}
- name: AUTH_SERVER__TRUSTED_PROXIES
  value: {{ .Values.server.trustedProxies | toJson | quote }}
- name: AUTH_SERVER__GRACEFUL_SHUTDOWN_SECONDS
  value: {{ .Values.server.gracefulShutdownSeconds | quote }}
- name: AUTH_HEALTH__DRAIN_DELAY_SECONDS
  value: {{ .Values.server.drainDelaySeconds | quote }}
- name: AUTH_LOGGING__FORMAT
  value: {{ .Values.logging.format | quote }}
- name: AUTH_MAIL__BACKEND
  value: {{ .Values.mail.backend | quote }}
{{- if eq .Values.mail.backend "smtp" }}
- name: AUTH_MAIL__SMTP_HOST
  value: {{ .Values.mail.smtp.host | quote }}
- name: AUTH_MAIL__SMTP_PORT
  value: {{ .Values.mail.smtp.port | quote }}
- name: AUTH_MAIL__SMTP_STARTTLS
  value: {{ .Values.mail.smtp.starttls | quote }}
{{- if .Values.mail.smtp.auth }}
- name: AUTH_MAIL__SMTP_PASSWORD_FILE
  value: {{ printf "%s/%s" $secretDir .Values.secrets.keys.smtpPassword | quote }}
{{- end }}
{{- end }}
- name: AUTH_MASTER_KEY_FILE
  value: {{ printf "%s/%s" $secretDir .Values.secrets.keys.masterKey | quote }}
- name: AUTH_DATABASE__URL_FILE
  value: {{ printf "%s/%s" $secretDir .Values.secrets.keys.databaseUrl | quote }}
{{- if .Values.externalDatabase.cloudNativePG.cluster }}
# CloudNativePG's server certificate, verified against the cluster's CA under the -rw name.
- name: AUTH_DATABASE__SSL_MODE
  value: {{ .Values.externalDatabase.cloudNativePG.sslMode | quote }}
- name: AUTH_DATABASE__SSL_ROOT_CERT
  value: /var/run/auth-service/db-ca/ca.crt
{{- end }}
{{- if .Values.redis.enabled }}
- name: AUTH_REDIS__URL_FILE
  value: {{ printf "%s/%s" $secretDir .Values.secrets.keys.redisUrl | quote }}
{{- end }}
- name: PROMETHEUS_MULTIPROC_DIR
  value: /tmp/prometheus
- name: OTEL_SERVICE_NAME
  value: {{ include "auth-service.fullname" . | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ printf "service.namespace=%s,deployment.environment=%s" .Release.Namespace .Values.environment | quote }}
{{- if .Values.tracing.enabled }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .Values.tracing.otlpEndpoint | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ .Values.tracing.sampler | quote }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ .Values.tracing.samplerArg | quote }}
{{- else }}
- name: OTEL_SDK_DISABLED
  value: "true"
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The secret items projected as files (only the keys the configuration uses). The backup key only
where `backup` is true (backup pods; server pods that can read the backups, see below).
*/}}
{{- define "auth-service.secretItems" -}}
{{- $backup := .backup }}
{{- with .standby }}
- key: {{ . }}
  path: {{ . }}
{{- end }}
{{- with .root }}
- key: {{ .Values.secrets.keys.masterKey }}
  path: {{ .Values.secrets.keys.masterKey }}
- key: {{ .Values.secrets.keys.databaseUrl }}
  path: {{ .Values.secrets.keys.databaseUrl }}
{{- if .Values.redis.enabled }}
- key: {{ .Values.secrets.keys.redisUrl }}
  path: {{ .Values.secrets.keys.redisUrl }}
{{- end }}
{{- if and $backup .Values.backup.enabled }}
- key: {{ .Values.secrets.keys.backupKey }}
  path: {{ .Values.secrets.keys.backupKey }}
{{- end }}
{{- if and (eq .Values.mail.backend "smtp") .Values.mail.smtp.auth }}
- key: {{ .Values.secrets.keys.smtpPassword }}
  path: {{ .Values.secrets.keys.smtpPassword }}
{{- end }}
{{- end }}
{{- end }}

{{/* Volumes every auth-service pod has. Call with (dict "root" $ "configMap" NAME). */}}
{{- define "auth-service.volumes" -}}
- name: config
  configMap:
    name: {{ .configMap }}
- name: secrets
  secret:
    secretName: {{ include "auth-service.secretName" .root }}
    defaultMode: 0440
    items:
      {{- include "auth-service.secretItems" (dict "root" .root "backup" .backup "standby" .standby) | nindent 6 }}
- name: tmp
  emptyDir:
    {{- if .scratch }}
    # Disk-backed: `backup verify --restore-test` restores a whole database under /tmp.
    sizeLimit: {{ .root.Values.backup.scratchSizeLimit }}
    {{- else }}
    medium: Memory
    sizeLimit: {{ .root.Values.tmpSizeLimit }}
    {{- end }}
- name: data
  emptyDir:
    sizeLimit: {{ .root.Values.dataSizeLimit }}
{{- with include "auth-service.cnpgCaSecret" .root }}
- name: db-ca
  secret:
    secretName: {{ . }}
    defaultMode: 0444
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- end }}

{{/*
The ConfigMap is mounted as a directory, never with subPath: the kubelet swaps the `..data`
symlink on update, which the service's file watcher sees (hot reload).
*/}}
{{- define "auth-service.volumeMounts" -}}
- name: config
  mountPath: /etc/auth-service
  readOnly: true
- name: secrets
  mountPath: {{ include "auth-service.secretMountPath" . }}
  readOnly: true
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /var/lib/auth-service
{{- if .Values.externalDatabase.cloudNativePG.cluster }}
- name: db-ca
  mountPath: /var/run/auth-service/db-ca
  readOnly: true
{{- end }}
{{- end }}

{{/* Scheduling knobs shared by the long-running pods. */}}
{{- define "auth-service.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}

{{/* Configuration sanity checks that a JSON schema cannot express. */}}
{{- define "auth-service.validate" -}}
{{- if le (int .Values.terminationGracePeriodSeconds) (add (int .Values.server.drainDelaySeconds) (int .Values.server.gracefulShutdownSeconds) 5 | int) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed server.drainDelaySeconds + server.gracefulShutdownSeconds (%v + %v) by more than 5s, or the kubelet kills the pod mid-drain" .Values.terminationGracePeriodSeconds .Values.server.drainDelaySeconds .Values.server.gracefulShutdownSeconds) }}
{{- end }}
{{- if and (eq .Values.environment "production") (not (hasPrefix "https://" .Values.server.publicUrl)) }}
{{- fail "server.publicUrl must be https:// when environment is production" }}
{{- end }}
{{- if and (not .Values.postgresql.enabled) (not .Values.secrets.existingSecret) (not .Values.externalDatabase.url) (not .Values.externalDatabase.cloudNativePG.create) }}
{{- fail "set externalDatabase.url (or secrets.existingSecret) when the bundled postgresql is disabled" }}
{{- end }}
{{- if and .Values.postgresql.enabled (or .Values.externalDatabase.url .Values.externalDatabase.cloudNativePG.cluster) }}
{{- fail "externalDatabase is set: disable the bundled PostgreSQL (postgresql.enabled=false)" }}
{{- end }}
{{- if and .Values.redis.enabled (not .Values.secrets.existingSecret) (not .Values.secrets.redisUrl) }}
{{- fail "set secrets.redisUrl (or secrets.existingSecret) when redis.enabled is true" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (lt (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) }}
{{- fail "autoscaling.maxReplicas must be >= autoscaling.minReplicas" }}
{{- end }}
{{- if and .Values.tls.enabled .Values.ingress.enabled .Values.ingress.tls.enabled (eq .Values.ingress.tls.secretName (printf "%s-tls" (include "auth-service.fullname" .))) }}
{{- fail (printf "ingress.tls.secretName %s is the serving certificate's Secret when tls.enabled: give the public certificate another name" .Values.ingress.tls.secretName) }}
{{- end }}
{{- if and .Values.ingress.enabled .Values.ingress.tls.enabled (not .Values.ingress.tls.secretName) (not .Values.ingress.certManager.enabled) }}
{{- fail "ingress.tls.secretName is required unless ingress.certManager.enabled" }}
{{- end }}
{{- end }}

{{/* Pod spec of the backup CronJobs and the WAL streamer. */}}
{{- define "auth-service.backupPodSpec" -}}
{{- $root := .root }}
serviceAccountName: {{ include "auth-service.serviceAccountName" $root }}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- include "auth-service.podSecurityContext" $root | nindent 2 }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- include "auth-service.scheduling" $root }}
containers:
  - name: {{ .name }}
    image: {{ include "auth-service.image" $root }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    args: {{ toJson .args }}
    env:
      {{- include "auth-service.env" $root | nindent 6 }}
      {{- include "auth-service.backupEnv" $root | nindent 6 }}
      {{- if $root.Values.backup.persistence.enabled }}
      # The WAL spool on the backup volume (default: under the data dir, an emptyDir here).
      - name: AUTH_BACKUP__SPOOL_DIR
        value: /var/lib/auth-service/backups/wal-spool
      {{- end }}
    resources:
      {{- toYaml $root.Values.backup.resources | nindent 6 }}
    securityContext:
      {{- include "auth-service.containerSecurityContext" $root | nindent 6 }}
    volumeMounts:
      {{- include "auth-service.volumeMounts" $root | nindent 6 }}
      {{- if $root.Values.backup.persistence.enabled }}
      - name: backups
        mountPath: /var/lib/auth-service/backups
      {{- end }}
volumes:
  {{- include "auth-service.volumes" (dict "root" $root "configMap" (printf "%s-config" (include "auth-service.fullname" $root)) "backup" true "scratch" true) | nindent 2 }}
  {{- if $root.Values.backup.persistence.enabled }}
  - name: backups
    persistentVolumeClaim:
      claimName: {{ include "auth-service.backupClaim" $root }}
  {{- end }}
{{- end }}

{{- define "auth-service.backupClaim" -}}
{{- default (printf "%s-backups" (include "auth-service.fullname" .)) .Values.backup.persistence.existingClaim }}
{{- end }}

{{/* Backup key and destination, for the backup pods and for server pods that see the backups. */}}
{{- define "auth-service.backupEnv" -}}
- name: AUTH_BACKUP__KEY_FILE
  value: {{ printf "%s/%s" (include "auth-service.secretMountPath" .) .Values.secrets.keys.backupKey | quote }}
{{- if .Values.backup.persistence.enabled }}
- name: AUTH_BACKUP__DESTINATIONS
  value: '[{"url": "file:///var/lib/auth-service/backups"}]'
{{- end }}
{{- end }}

{{/*
"true" when the server pods read the backup catalog: the service's backup health check and the
auth_backup_* / WAL-lag metrics behind the AuthBackupStale and AuthWalArchiveLagging alerts are
computed by the server from the catalog, which needs the backup key and the destination. With a
volume that is only possible when it is ReadWriteMany (mounted read-only in every server pod);
with object storage (backup.persistence.enabled=false) always.
*/}}
{{- define "auth-service.serverSeesBackups" -}}
{{- if and .Values.backup.enabled (or (not .Values.backup.persistence.enabled) (has "ReadWriteMany" .Values.backup.persistence.accessModes)) -}}
true
{{- end }}
{{- end }}

{{/*
Service mesh: what a pod template carries. Call with (dict "root" $ "inject" true|false):
meshed pods (server, observers) ask for the proxy; Job pods say no explicitly, so that
namespace-wide injection never gives them a sidecar that keeps the Job from completing.
*/}}
{{- define "auth-service.meshPodLabels" -}}
{{- if eq .root.Values.mesh.provider "istio" }}
sidecar.istio.io/inject: {{ ternary "true" "false" .inject | quote }}
{{- end }}
{{- end }}

{{- define "auth-service.meshPodAnnotations" -}}
{{- if eq .root.Values.mesh.provider "linkerd" }}
linkerd.io/inject: {{ ternary "enabled" "disabled" .inject }}
{{- end }}
{{- end }}

{{/* Egress rule of the meshed pods to the mesh's control plane (nothing without a mesh). */}}
{{- define "auth-service.meshEgress" -}}
{{- $mesh := .Values.mesh }}
{{- if ne $mesh.provider "none" }}
{{- $ns := ternary "istio-system" "linkerd" (eq $mesh.provider "istio") }}
{{- $peers := $mesh.controlPlane | default (list (dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" $ns)))) }}
{{- $ports := ternary (list 15012) (list 8080 8086 8090) (eq $mesh.provider "istio") }}
- to:
    {{- toYaml $peers | nindent 4 }}
  ports:
    {{- range $ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end }}
{{- end }}

{{/* The CloudNativePG cluster's CA secret, when the service talks to one. */}}
{{- define "auth-service.cnpgCaSecret" -}}
{{- with .Values.externalDatabase.cloudNativePG }}
{{- if .cluster }}
{{- default (printf "%s-ca" .cluster) .caSecret }}
{{- end }}
{{- end }}
{{- end }}

{{/* Database peers (a YAML list): the configured ones, a CloudNativePG cluster's pods, the bundled PostgreSQL. */}}
{{- define "auth-service.databasePeers" -}}
{{- $dbPeers := .Values.networkPolicy.egress.database.to }}
{{- with .Values.externalDatabase.cloudNativePG.cluster }}
{{- $dbPeers = append $dbPeers (dict "podSelector" (dict "matchLabels" (dict "cnpg.io/cluster" .))) }}
{{- end }}
{{- if .Values.postgresql.enabled }}
{{- $dbPeers = append $dbPeers (dict "podSelector" (dict "matchLabels" (include "auth-service.selectorLabels" (dict "root" . "component" "postgresql") | fromYaml))) }}
{{- end }}
{{- toYaml $dbPeers }}
{{- end }}
