#!/usr/bin/env bash
# Installs the Debian peers the tests use, non-interactively and
# idempotently: Postfix (configured "No configuration", its own daemons not
# left running) with its pcre/lmdb/cdb/sqlite map types, swaks, python3, curl,
# pflogsumm (log compatibility), gcc (the ENOSPC fault shim), and for the SQL
# tables PostgreSQL, MariaDB, sqlite3 and Postfix's pgsql/mysql map types
# (scripts/start-db-peers.sh starts the servers); for smtpd's SASL and policy
# services Dovecot (dovecot-core), postgrey and postfwd, for LMTP delivery
# Dovecot's LMTP server (dovecot-lmtpd), dnsmasq (a local DNS server for MX
# and DNS-list tests), and for the milter tests OpenDKIM (opendkim,
# opendkim-tools), rspamd, ClamAV (clamav-daemon, clamav-milter, clamav for
# sigtool) and miltertest, whose own services are not left running or enabled
# (the tests start their own instances; tests/helpers/milter_peers.ts), and
# for DANE a validating resolver (unbound) with ldnsutils (ldns-signzone signs
# the tests' zone), and xmllint (libxml2-utils) to check JUnit reports
# against their schema.
# freshclam is set to "manual" and never run: the tests' clamd uses its own
# tiny offline signature database, and CI cannot download ClamAV's.
# Fast when everything is present. Needs root (or sudo) and apt-get.
set -euo pipefail

PACKAGES=(postfix postfix-pcre postfix-lmdb postfix-cdb postfix-sqlite postfix-pgsql postfix-mysql swaks python3
  curl pflogsumm gcc postgresql mariadb-server sqlite3 dovecot-core dovecot-lmtpd dnsmasq-base postgrey postfwd
  opendkim opendkim-tools miltertest rspamd clamav-daemon clamav-milter clamav unbound ldnsutils libxml2-utils)

# System services of the packages above: none is left running or enabled.
SERVICES=(dovecot postgrey postfwd opendkim rspamd clamav-daemon clamav-freshclam clamav-milter unbound)

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
  $SUDO debconf-set-selections <<'EOF'
postfix postfix/main_mailer_type select No configuration
clamav-freshclam clamav-freshclam/autoupdate_freshclam select manual
EOF
  export DEBIAN_FRONTEND=noninteractive
  # Packages do not start their services while being installed (Debian's
  # policy-rc.d, as in Docker images); an existing one is left alone.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    trap '$SUDO rm -f "$policy"' EXIT
  fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$policy" ]; then $SUDO rm -f "$policy"; fi
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
  for svc in "${SERVICES[@]}"; do
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
  done
  # clamd is also socket-activated, and freshclam has a one-shot timer.
  $SUDO systemctl disable --now clamav-daemon.socket clamav-freshclam-once.timer >/dev/null 2>&1 || true
fi
for svc in "${SERVICES[@]}"; do
  if [ -x "/etc/init.d/$svc" ]; then $SUDO "/etc/init.d/$svc" stop >/dev/null 2>&1 || true; fi
  # Without systemd: no start links left in the runlevels.
  if compgen -G "/etc/rc[2-5].d/S[0-9][0-9]$svc" >/dev/null && command -v update-rc.d >/dev/null 2>&1; then
    $SUDO update-rc.d "$svc" disable >/dev/null 2>&1 || true
  fi
done

for bin in /usr/sbin/postconf /usr/sbin/smtp-sink /usr/sbin/smtp-source /usr/bin/swaks /usr/sbin/postmap /usr/sbin/pflogsumm /usr/bin/gcc /usr/bin/curl /usr/bin/pg_ctlcluster /usr/sbin/mariadbd /usr/bin/sqlite3 \
  /usr/sbin/dovecot /usr/bin/doveadm /usr/lib/dovecot/lmtp /usr/sbin/dnsmasq /usr/sbin/postgrey /usr/sbin/postfwd /usr/bin/openssl /usr/sbin/posttls-finger \
  /usr/sbin/opendkim /usr/sbin/opendkim-genkey /usr/bin/miltertest /usr/bin/rspamd /usr/sbin/clamd /usr/sbin/clamav-milter \
  /usr/bin/sigtool /usr/bin/clamscan /usr/sbin/opendkim-testmsg /usr/sbin/unbound /usr/bin/ldns-signzone /usr/bin/xmllint; do
  if [ ! -x "$bin" ]; then
    echo "install-peers: $bin is missing after install" >&2
    exit 1
  fi
done
