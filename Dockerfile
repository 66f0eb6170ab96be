# syntax=docker/dockerfile:1.7
# auth-service container image.
#   docker build -t auth-service:dev .
# Multi-stage: the builder installs the project and its dependencies into a virtualenv at
# /opt/venv; the runtime stage copies that venv onto a clean slim base (no compilers, no pip
# caches, no build tools). Runs as UID/GID 10001, works with a read-only root filesystem: it
# writes only to /tmp (tmpfs/emptyDir) and /var/lib/auth-service (the data volume).
# See docs/adr/0100-container-image.md.

ARG PYTHON_VERSION=3.11
ARG DEBIAN_RELEASE=bookworm

FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md* ./
COPY src ./src
# Non-editable install: the runtime stage gets no source tree, only the installed package.
# Byte-compile everything now, since the root filesystem is read-only at run time.
RUN /opt/venv/bin/pip install --no-cache-dir . \
 && /opt/venv/bin/python -m compileall -q -j 0 /opt/venv/lib

FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS runtime
ARG PG_MAJOR=17
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="auth-service" \
      org.opencontainers.image.description="Self-hostable authentication service: accounts, sessions, signed tokens, with operations built in." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/auth-service" \
      org.opencontainers.image.documentation="docs/deployment.md" \
      org.opencontainers.image.base.name="docker.io/library/python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE}"

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# tini: a real init as PID 1 (signal forwarding, zombie reaping) for Kubernetes, which has no
# `--init`. postgresql-${PG_MAJOR} from the PostgreSQL project's apt repository: the backup
# engine's pg_dump/pg_basebackup/pg_receivewal must be at least the server's major version
# (Debian's own are 15), and `backup verify --restore-test` starts a throwaway server (initdb,
# pg_ctl) under /tmp. No cluster is created in the image (create_main_cluster = false). The repository key is fetched
# over HTTPS with the stdlib (no curl/gnupg in the image) and apt verifies every package with it.
# Versions are not pinned (DL3008): the Debian point release and PGDG publish security fixes
# under new versions, and the base image tag plus a rebuild schedule is the pin we want.
# hadolint ignore=DL3008
RUN python -c "import urllib.request; urllib.request.urlretrieve('https://www.postgresql.org/media/keys/ACCC4CF8.asc', '/usr/share/keyrings/pgdg.asc')" \
 && . /etc/os-release \
 && echo "deb [signed-by=/usr/share/keyrings/pgdg.asc] https://apt.postgresql.org/pub/repos/apt ${VERSION_CODENAME}-pgdg main" > /etc/apt/sources.list.d/pgdg.list \
 && mkdir -p /etc/postgresql-common/createcluster.d \
 && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/auth-service.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends tini "postgresql-${PG_MAJOR}" \
 && apt-get purge -y --auto-remove \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && groupadd --system --gid 10001 auth \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/auth-service --no-create-home --shell /usr/sbin/nologin auth \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/auth-service /etc/auth-service

COPY --from=builder /opt/venv /opt/venv
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/docker-entrypoint

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    AUTH_ENV=production \
    AUTH_DATA_DIR=/var/lib/auth-service \
    AUTH_SERVER__HOST=0.0.0.0 \
    AUTH_SERVER__PORT=8000 \
    AUTH_SERVER__MANAGEMENT_HOST=0.0.0.0 \
    AUTH_SERVER__MANAGEMENT_PORT=9000 \
    AUTH_LOGGING__FORMAT=json \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus \
    AUTH_BACKUP__PG_BIN_DIR=/usr/lib/postgresql/${PG_MAJOR}/bin \
    OTEL_SERVICE_NAME=auth-service

WORKDIR /var/lib/auth-service
USER 10001:10001
EXPOSE 8000 9000
STOPSIGNAL SIGTERM
# The CLI's healthcheck uses only the stdlib: no curl or wget in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["auth-service", "healthcheck", "--probe", "ready"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/docker-entrypoint"]
CMD ["serve"]
