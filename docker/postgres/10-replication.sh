#!/bin/sh
# Mounted into the Compose `postgres` service at /docker-entrypoint-initdb.d and run once after
# initdb. The default pg_hba.conf admits replication connections from localhost only; the WAL
# streamer (`auth-service backup wal-stream`, pg_receivewal) connects over the Compose network.
# (The Helm chart carries the same line in its `<release>-postgresql-initdb` ConfigMap.)
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "${PGDATA}/pg_hba.conf"
