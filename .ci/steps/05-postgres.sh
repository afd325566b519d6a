#!/usr/bin/env bash
# PostgreSQL for the gateway's store suite (crates/gateway/tests/store_behaviour.rs): Debian's
# server package, a cluster of its own ("nullgate", port 5439) listening on 127.0.0.1 only,
# with password (SCRAM) auth over TCP and a role and database `nullgate` the tests make their
# schemas in. Idempotent: a second run finds the cluster running and leaves it so.
# .ci/run exports the matching NULLGATE_POSTGRES_URL. The password is for this loopback-only
# test cluster and guards nothing else.
set -euo pipefail
cd "$(dirname "$0")/../.."

port="${NULLGATE_POSTGRES_PORT:-5439}"
cluster="nullgate"
role="nullgate"
password="nullgate-ci"

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || ! command -v pg_createcluster >/dev/null 2>&1; then
    echo "-- installing postgresql (Debian)"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq postgresql
fi
version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"

# Runs a command as the cluster's owner.
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        sudo -u postgres "$@"
    fi
}

if ! pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { found = 1 } END { exit !found }'; then
    echo "-- creating PostgreSQL $version cluster $cluster on 127.0.0.1:$port"
    $sudo pg_createcluster --quiet "$version" "$cluster" --port "$port" --start-conf manual \
        -- --auth-local=peer --auth-host=scram-sha-256
fi
# Loopback only; room for tests running in parallel, each with a pool or two. (Debian's
# postgresql.conf reads conf.d/ last, so these win over its defaults.)
printf "listen_addresses = '127.0.0.1'\nmax_connections = 300\n" \
    | $sudo tee "/etc/postgresql/$version/$cluster/conf.d/nullgate-ci.conf" >/dev/null

if ! pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c && $4 == "online" { found = 1 } END { exit !found }'; then
    echo "-- starting cluster $version/$cluster"
    $sudo pg_ctlcluster "$version" "$cluster" start
fi

for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p "$port" && break
    sleep 1
done
pg_isready -h 127.0.0.1 -p "$port"

# The role and its database, created once; the password is set on every run, so a cluster
# left by an earlier run with another one still matches .ci/run.
as_postgres psql -q -X -v ON_ERROR_STOP=1 -p "$port" -d postgres <<SQL
SELECT 'CREATE ROLE $role LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role')
\gexec
ALTER ROLE $role PASSWORD '$password';
SELECT 'CREATE DATABASE $role OWNER $role' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$role')
\gexec
SQL
echo "-- PostgreSQL $(as_postgres psql -X -At -p "$port" -d postgres -c 'SHOW server_version') on 127.0.0.1:$port, database $role"
