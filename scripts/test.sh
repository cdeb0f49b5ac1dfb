#!/usr/bin/env bash
# Runs every test of Coffer on SQLite and PostgreSQL:
#   1. starts a private PostgreSQL (installing Debian's package if needed) unless COFFER_TEST_POSTGRES_URL is set;
#   2. installs Debian's chromium, chromium-driver, libqrencode4, fonts-noto-cjk and nginx when missing (browser tests, QR
#      codes, Chinese glyphs in screenshots, the multi-instance test), and makes a Python virtual environment with the payment libraries the
#      interoperability tests check Coffer against (wechatpayv3, python-alipay-sdk, cryptography), Selenium and
#      schemathesis, kept in .build/interop-venv;
#   3. builds once (`swift build --build-tests`) and runs every suite from that build;
#   4. runs the README's curl walk-through against a started server on SQLite and on PostgreSQL, then `coffer verify`;
#   4b. runs schemathesis (tests generated from the OpenAPI document) against a started server on both databases;
#   4c. starts three servers on one PostgreSQL behind nginx (Debian's package, installed when missing), runs load through
#       it, kills one with SIGKILL, and checks nothing was lost or applied twice and no job ran twice (scripts/cluster-test.py);
#   4d. sends notices through a local SMTP relay (aiosmtpd: STARTTLS, AUTH) and checks each arrives once, in the account's
#       language (scripts/smtp-test.py);
#   5. drives the web console in headless chromium with Selenium (Tests/Browser), on SQLite and PostgreSQL, saving
#      screenshots under .build/browser-screenshots;
#   6. kills the server with SIGKILL under load on both databases and checks that nothing acknowledged was lost and
#      nothing was applied twice (scripts/crash-test.py);
#   7. greps the JSON logs of every server started above for keys, passwords, tokens and account numbers
#      (scripts/check-logs.py);
#   8. stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/postgres.sh

if [ -z "${COFFER_TEST_POSTGRES_URL:-}" ]; then
  start_postgres
  trap stop_postgres EXIT
fi
export COFFER_REQUIRE_POSTGRES=1

debian_packages="chromium chromium-driver libqrencode4 fonts-noto-cjk nginx"
missing=$(for p in $debian_packages; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  echo "== installing Debian packages:" $missing
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  $sudo apt-get update -qq
  # Debian's nginx package would start a system nginx on port 80; the multi-instance test starts its own.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null && $sudo chmod +x /usr/sbin/policy-rc.d && policy=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
  if [ -n "$policy" ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
fi

# Debian and Ubuntu ship the venv module apart from python3.
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
fi
venv=.build/interop-venv
if ! "$venv/bin/python" -c 'import wechatpayv3, alipay, cryptography, selenium, schemathesis, aiosmtpd' >/dev/null 2>&1; then
  echo "== Python virtual environment for the interoperability and browser tests ($venv)"
  mkdir -p .build
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check wechatpayv3==2.0.4 python-alipay-sdk==3.4.0 'cryptography>=42' \
    selenium==4.51.0 schemathesis==4.32.5 aiosmtpd==1.4.6
fi
export COFFER_TEST_PYTHON=$PWD/$venv/bin/python COFFER_REQUIRE_INTEROP=1 COFFER_REQUIRE_QRENCODE=1

echo "== building (debug, with tests)"
swift build --build-tests

echo "== unit, storage and HTTP suites (SQLite and PostgreSQL)"
log=$(mktemp)
swift test --skip-build 2>&1 | tee "$log"
swift_tests=$(grep -oE 'Test run with [0-9]+ tests' "$log" | tail -n 1 | grep -oE '[0-9]+' || echo 0)
rm -f "$log"
[ "$swift_tests" -gt 0 ] || { echo "no Swift tests ran"; exit 1; }

echo "== README walk-through against a started server"
# Every server the walk-throughs and schemathesis start logs JSON lines here; scripts/check-logs.py greps them for secrets.
export COFFER_LOG_DIR=$(mktemp -d /tmp/coffer-logs.XXXXXX)
bash scripts/walkthrough.sh sqlite
bash scripts/walkthrough.sh "$COFFER_TEST_POSTGRES_URL"

echo "== schemathesis: tests generated from the OpenAPI document against a started server"
bash scripts/schemathesis.sh "$venv/bin/python" sqlite
bash scripts/schemathesis.sh "$venv/bin/python" "$COFFER_TEST_POSTGRES_URL"

echo "== several instances: three servers on one PostgreSQL behind nginx, one killed with SIGKILL under load"
python3 scripts/cluster-test.py .build/debug/coffer --database "$COFFER_TEST_POSTGRES_URL"

echo "== e-mail: notices through a local SMTP relay (aiosmtpd, STARTTLS with a private CA, AUTH PLAIN)"
"$venv/bin/python" scripts/smtp-test.py .build/debug/coffer

echo "== web console in a real browser (headless chromium, Selenium)"
"$venv/bin/python" Tests/Browser/console_test.py .build/debug/coffer
"$venv/bin/python" Tests/Browser/console_test.py .build/debug/coffer --database "$COFFER_TEST_POSTGRES_URL" \
  --screenshots .build/browser-screenshots/postgres

echo "== crash test: SIGKILL under load, restart, retry with the same idempotency keys"
python3 scripts/crash-test.py .build/debug/coffer
python3 scripts/crash-test.py .build/debug/coffer --database "$COFFER_TEST_POSTGRES_URL"

echo "== server logs: JSON lines, no keys, passwords, tokens or account numbers"
python3 scripts/check-logs.py "$COFFER_LOG_DIR"
rm -rf "$COFFER_LOG_DIR"

echo "coffer: $((swift_tests + 11)) passed, 0 failed (${swift_tests} Swift tests, 2 walk-throughs, 2 schemathesis runs, 1 multi-instance test, 1 SMTP test, 2 browser runs, 2 crash tests, 1 log check)"
