#!/usr/bin/env bash
# `npm run demo`: npm dependencies if there are none yet, then the demo (it checks for swtpm
# itself and installs the Debian packages when run as root, or says exactly what to install).
# An installed tree is used as it is: `npm ci` here would pull it from under anything else
# running from it (tests in another shell).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x node_modules/.bin/tsx ]; then
  bash scripts/ensure-deps.sh
fi
exec node --import tsx scripts/demo.ts "$@"
