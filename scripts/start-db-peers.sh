#!/usr/bin/env bash
# Starts the SQL servers the interop tests use (tests/interop/sql_maps_test.ts)
# in a container without systemd, and creates the test database and user in
# each: PostgreSQL (Debian's cluster, pg_ctlcluster) and MariaDB
# (mysqld_safe through `service mariadb start`). Idempotent and fast when the
# servers already run. Needs root (or sudo); installs nothing (see
# install-peers.sh). A server that is not installed is skipped with a
# message; the test then skips (or fails under CI=true).
#
#   database  postwarden_test
#   user      postwarden_test  password  postwarden-test-pw
#   pgsql     127.0.0.1:5432 and unix:/var/run/postgresql (scram password)
#   mysql     127.0.0.1:3306 and unix:/run/mysqld/mysqld.sock
set -euo pipefail
# The postgres user cannot enter a checkout under /root (mode 0700): psql run
# as that user would complain about the working directory.
cd /

DB=postwarden_test
DB_USER=postwarden_test
DB_PASSWORD=postwarden-test-pw

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

wait_for() { # seconds command...
  local n=$(($1 * 10))
  shift
  while ! "$@" >/dev/null 2>&1; do
    n=$((n - 1))
    if [ "$n" -le 0 ]; then return 1; fi
    sleep 0.1
  done
}

start_pgsql() {
  if ! command -v pg_lsclusters >/dev/null 2>&1; then
    echo "start-db-peers: PostgreSQL is not installed; skipped"
    return 0
  fi
  local line ver cluster status hba
  line="$(pg_lsclusters --no-header | head -1)"
  if [ -z "$line" ]; then
    echo "start-db-peers: no PostgreSQL cluster; skipped" >&2
    return 1
  fi
  read -r ver cluster _ status _ <<<"$line"
  hba="/etc/postgresql/$ver/$cluster/pg_hba.conf"
  # Password login for the test user over the UNIX socket too (Debian's
  # default there is peer authentication, which needs an OS user).
  if ! grep -q "^local[[:space:]]\+$DB[[:space:]]\+$DB_USER" "$hba"; then
    $SUDO sed -i "0,/^local/s//local   $DB   $DB_USER   scram-sha-256\n&/" "$hba"
    if [ "$status" = online ]; then $SUDO pg_ctlcluster "$ver" "$cluster" reload; fi
  fi
  if [ "$status" != online ]; then
    $SUDO pg_ctlcluster "$ver" "$cluster" start
  fi
  wait_for 30 as_postgres psql -qAtc "select 1"
  local psql=(as_postgres psql -qAt -v ON_ERROR_STOP=1)
  if [ "$("${psql[@]}" -c "select 1 from pg_roles where rolname='$DB_USER'")" != 1 ]; then
    "${psql[@]}" -c "create role $DB_USER login password '$DB_PASSWORD'"
  fi
  if [ "$("${psql[@]}" -c "select 1 from pg_database where datname='$DB'")" != 1 ]; then
    "${psql[@]}" -c "create database $DB owner $DB_USER encoding 'UTF8' template template0"
  fi
  echo "start-db-peers: PostgreSQL $ver/$cluster up, database $DB"
}

start_mysql() {
  if ! command -v mariadbd >/dev/null 2>&1 && ! command -v mysqld >/dev/null 2>&1; then
    echo "start-db-peers: MariaDB is not installed; skipped"
    return 0
  fi
  if ! $SUDO mariadb-admin ping >/dev/null 2>&1; then
    $SUDO service mariadb start >/dev/null
    wait_for 30 $SUDO mariadb-admin ping
  fi
  $SUDO mariadb -e "
    CREATE DATABASE IF NOT EXISTS $DB CHARACTER SET utf8mb4;
    CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
    CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
    GRANT ALL ON $DB.* TO '$DB_USER'@'localhost';
    GRANT ALL ON $DB.* TO '$DB_USER'@'127.0.0.1';"
  echo "start-db-peers: MariaDB up, database $DB"
}

start_pgsql
start_mysql
