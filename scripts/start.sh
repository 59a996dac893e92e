#!/usr/bin/env bash
# `npm start`: install what is missing, build, run the CA on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
npm run --silent build
exec node --enable-source-maps dist/cli/main.js serve --config "${MAYFLY_CONFIG:-ca-config/mayfly.yaml}" "$@"
