#!/usr/bin/env bash
# Installs (if needed) and starts Debian's PostgreSQL on loopback, creates the role and the
# database the tests use, and prints their URL. Idempotent; needs root (CI and the dev
# machines run as root).
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -V | tail -1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version main"; then
    pg_createcluster "$version" main >/dev/null
fi
if ! pg_lsclusters -h | grep -q "^$version *main .* online"; then
    pg_ctlcluster "$version" main start
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
echo "postgres://expansa:expansa@127.0.0.1:5432/expansa"
