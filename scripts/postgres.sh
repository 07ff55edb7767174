#!/usr/bin/env bash
# Installs (if needed) and starts Debian's PostgreSQL on loopback, creates the role and the
# database the tests use, and prints their URL. Idempotent; needs root (CI and the dev
# machines run as root). Only the URL goes to standard output: pg_ctlcluster and friends talk
# on it ("Removed stale pid file." after a killed server), so everything else goes to stderr.
set -euo pipefail
exec 3>&1 1>&2
if ! command -v pg_ctlcluster >/dev/null; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -V | tail -1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version main"; then
    pg_createcluster "$version" main >/dev/null
fi
if ! pg_lsclusters -h | grep -q "^$version *main .* online"; then
    # A server killed with its session leaves socket lock files naming a process that is gone
    # (or whose number now belongs to something else).
    for lock in /var/run/postgresql/.s.PGSQL.*.lock; do
        [ -e "$lock" ] || continue
        pid=$(head -1 "$lock")
        grep -qs postgres "/proc/$pid/comm" || rm -f "$lock"
    done
    # The server must not inherit our descriptors (the URL pipe above all: a caller's $(...)
    # would wait for it forever), so it starts with only stdin, stdout and stderr.
    (
        for fd in $(ls /proc/$BASHPID/fd); do
            [ "$fd" -gt 2 ] && eval "exec $fd>&-"
        done 2>/dev/null
        pg_ctlcluster "$version" main start </dev/null
    )
fi
for _ in $(seq 1 30); do
    su postgres -c "pg_isready -q -h 127.0.0.1" && break
    sleep 1
done
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_roles WHERE rolname = 'expansa'\"" | grep -q 1 ||
    su postgres -c "psql -q -c \"CREATE ROLE expansa LOGIN SUPERUSER PASSWORD 'expansa'\""
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_database WHERE datname = 'expansa'\"" | grep -q 1 ||
    su postgres -c "psql -q -c 'CREATE DATABASE expansa OWNER expansa'"
# Databases left by earlier test runs (each store test makes its own).
for db in $(su postgres -c "psql -At -c \"SELECT datname FROM pg_database WHERE datname LIKE 'expansa_t_%'\""); do
    su postgres -c "psql -q -c 'DROP DATABASE IF EXISTS $db'"
done
echo "postgres://expansa:expansa@127.0.0.1:5432/expansa" >&3
