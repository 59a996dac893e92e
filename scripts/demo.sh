#!/usr/bin/env bash
# `npm run demo`: npm dependencies if missing, then the demo (it checks for swtpm itself and
# installs the Debian packages when run as root, or says exactly what to install).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
exec node --import tsx scripts/demo.ts "$@"
