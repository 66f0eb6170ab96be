#!/bin/sh
# Container entrypoint for auth-service. PID 1 is tini (see Dockerfile), which forwards SIGTERM
# here; this script only prepares the writable paths and then `exec`s, so the service itself
# receives the signals and drains gracefully.
#
#   docker run IMAGE                    -> auth-service serve
#   docker run IMAGE migrate            -> auth-service migrate   (any auth-service subcommand)
#   docker run IMAGE --config F serve   -> auth-service --config F serve
#   docker run IMAGE sh -c '...'        -> runs that program (debugging)
set -eu

# Files the service creates (outbox, development keys) are private to its user and group.
umask 0027

log() { printf '{"level":"%s","logger":"docker-entrypoint","event":"%s"}\n' "$1" "$2" >&2; }

# prometheus_client's multiprocess mode keeps one file per worker process; files left over from
# a previous run would be summed into the new one, so the directory must start empty. It must
# live on a writable scratch filesystem (tmpfs / emptyDir): refuse anything outside /tmp rather
# than risk wiping a real directory through a misconfigured variable.
prepare_multiproc_dir() {
	dir="${PROMETHEUS_MULTIPROC_DIR:-}"
	[ -n "$dir" ] || return 0
	case "$dir" in
	*/../* | */.. | */./* | */.) log error "PROMETHEUS_MULTIPROC_DIR must be a normalised path: $dir"; exit 64 ;;
	/tmp/?*) ;;
	*) log error "PROMETHEUS_MULTIPROC_DIR must be below /tmp, got: $dir"; exit 64 ;;
	esac
	rm -rf -- "$dir"
	mkdir -p -- "$dir"
}

check_data_dir() {
	dir="${AUTH_DATA_DIR:-}"
	[ -n "$dir" ] || return 0
	mkdir -p -- "$dir" 2>/dev/null || true
	if [ ! -w "$dir" ]; then
		# Not fatal: with PostgreSQL, Redis and SMTP configured the service writes nothing
		# there. It is a hint for the embedded mode on a read-only root without a volume.
		log warning "AUTH_DATA_DIR $dir is not writable; mount a volume there for the embedded mode"
	fi
}

[ "$#" -gt 0 ] || set -- serve

case "$1" in
-* | serve | migrate | users | keys | config | healthcheck | backup | dr | version)
	set -- auth-service "$@"
	;;
esac

# The auth-service subcommand, skipping global options (`--config FILE`).
subcommand() {
	[ "${1:-}" = auth-service ] || return 0
	shift
	while [ "$#" -gt 0 ]; do
		case "$1" in
		--config) [ "$#" -ge 2 ] || return 0; shift 2 ;;
		-*) shift ;;
		*) printf '%s' "$1"; return 0 ;;
		esac
	done
}

# Only a server start owns the metrics directory: a one-off command (migrate, users ...) in the
# same container must not wipe the live workers' files.
if [ "$(subcommand "$@")" = serve ]; then
	prepare_multiproc_dir
	check_data_dir
fi

exec "$@"
