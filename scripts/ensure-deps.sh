#!/usr/bin/env bash
# Installs what Mayfly needs and is missing: npm packages (npm ci when node_modules
# is absent or older than the lock file) and, for tests, Debian packages (only when
# running as root; otherwise it says exactly what to install).
# Usage: scripts/ensure-deps.sh [debian-package ...]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "mayfly: installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund
fi

missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "mayfly: installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "mayfly: missing Debian packages: ${missing[*]}" >&2
    echo "mayfly: install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
