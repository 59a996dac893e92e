#!/usr/bin/env bash
# `npm test`: install what the tests need, then typecheck, lint and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages the tests use as real peers: openssl (s_client/s_server, verify),
# git (the fresh-clone start test), curl; swtpm and tpm2-tools (a real software TPM).
bash scripts/ensure-deps.sh openssl git curl ca-certificates swtpm swtpm-tools tpm2-tools libtss2-tcti-swtpm0 softhsm2
npm run --silent build
echo "mayfly: typecheck" >&2
npx tsc -p tsconfig.json --noEmit
echo "mayfly: lint" >&2
npx biome check .
echo "mayfly: tests" >&2
npx vitest run "$@"
