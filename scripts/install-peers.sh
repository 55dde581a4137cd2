#!/usr/bin/env bash
# Installs the Debian peers the tests use, non-interactively and
# idempotently: Postfix (configured "No configuration", its own daemons not
# left running) with its pcre/lmdb/cdb/sqlite map types, swaks, python3, curl,
# pflogsumm (log compatibility), gcc (the ENOSPC fault shim), and for the SQL
# tables PostgreSQL, MariaDB, sqlite3 and Postfix's pgsql/mysql map types
# (scripts/start-db-peers.sh starts the servers); for smtpd's SASL and policy
# services Dovecot (dovecot-core), postgrey and postfwd, for LMTP delivery
# Dovecot's LMTP server (dovecot-lmtpd), and dnsmasq (a local DNS server for MX
# and DNS-list tests), whose own services are not left running (the tests
# start their own instances).
# Fast when everything is present. Needs root (or sudo) and apt-get.
set -euo pipefail

PACKAGES=(postfix postfix-pcre postfix-lmdb postfix-cdb postfix-sqlite postfix-pgsql postfix-mysql swaks python3
  curl pflogsumm gcc postgresql mariadb-server sqlite3 dovecot-core dovecot-lmtpd dnsmasq-base postgrey postfwd)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-peers: installing ${missing[*]}"
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-peers: all peers present"
fi

# The system Postfix is only a reference and a test peer: never leave it
# running where it would hold port 25.
if command -v postfix >/dev/null 2>&1; then
  $SUDO postfix stop >/dev/null 2>&1 || true
fi
if command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now postfix >/dev/null 2>&1 || true
  $SUDO systemctl disable --now dovecot postgrey postfwd >/dev/null 2>&1 || true
fi
for svc in dovecot postgrey postfwd; do
  if [ -x "/etc/init.d/$svc" ]; then $SUDO "/etc/init.d/$svc" stop >/dev/null 2>&1 || true; fi
done

for bin in /usr/sbin/postconf /usr/sbin/smtp-sink /usr/sbin/smtp-source /usr/bin/swaks /usr/sbin/postmap /usr/sbin/pflogsumm /usr/bin/gcc /usr/bin/curl /usr/bin/pg_ctlcluster /usr/sbin/mariadbd /usr/bin/sqlite3 \
  /usr/sbin/dovecot /usr/bin/doveadm /usr/lib/dovecot/lmtp /usr/sbin/dnsmasq /usr/sbin/postgrey /usr/sbin/postfwd /usr/bin/openssl /usr/sbin/posttls-finger; do
  if [ ! -x "$bin" ]; then
    echo "install-peers: $bin is missing after install" >&2
    exit 1
  fi
done
