#!/bin/sh
# Creates the local secrets the Compose stack mounts (compose.yaml, `secrets:` and the
# Alertmanager secrets directory). Never overwrites an existing file, so keys survive re-runs.
#   sh docker/gen-secrets.sh [DIR]        (default: var/compose/secrets, gitignored)
# For a small production deployment, replace the generated placeholders (Alertmanager receivers)
# and keep DIR backed up: the master key decrypts the signing keys stored in the database.
set -eu

dir="${1:-var/compose/secrets}"
umask 077
mkdir -p "$dir/alertmanager"
chmod 0700 "$dir"
# Bind-mounted as a directory into Alertmanager (UID 65534), which must be able to list it.
chmod 0755 "$dir/alertmanager"

rand_b64url() { head -c "$1" /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }
rand_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# write FILE VALUE: only when FILE does not exist yet. The files are world-readable inside the
# 0700 directory because each container reads them under its own UID (auth-service 10001,
# postgres 999, grafana 472, alertmanager 65534) and plain Compose bind-mounts them as they are.
write() {
	[ -e "$1" ] && return 0
	printf '%s' "$2" >"$1.tmp"
	chmod 0644 "$1.tmp"
	mv "$1.tmp" "$1"
	echo "created $1"
}

write "$dir/master_key" "$(rand_b64url 32)"
write "$dir/backup_key" "$(rand_b64url 32)"
write "$dir/postgres_password" "$(rand_hex 24)"
write "$dir/database_url" "postgresql+asyncpg://auth:$(cat "$dir/postgres_password")@postgres:5432/auth"
write "$dir/grafana_admin_password" "$(rand_hex 16)"
# Placeholder for the `dr` profile (dr-watch): the URL of your standby, with its password.
write "$dir/standby_url" "postgresql+asyncpg://auth:REPLACE_ME@standby.invalid:5432/auth"
# Placeholders: Alertmanager reads them only when it sends; put real receivers here.
write "$dir/alertmanager/slack_webhook_url" "https://hooks.slack.invalid/services/REPLACE_ME"
write "$dir/alertmanager/pagerduty_routing_key" "REPLACE_ME"
write "$dir/alertmanager/smtp_password" "REPLACE_ME"
