#!/usr/bin/env bash
# `npm test`: install what the tests need, then typecheck, lint and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages the tests use as real peers: openssl (s_client/s_server, verify),
# git (the fresh-clone start test), curl; swtpm and tpm2-tools (a real software TPM);
# tpm2-openssl with tpm2-abrmd on a private D-Bus (openssl using a TPM-resident key);
# softhsm2 (PKCS#11); postgresql (a throwaway cluster when none answers on 127.0.0.1:5432).
bash scripts/ensure-deps.sh openssl git curl ca-certificates swtpm swtpm-tools tpm2-tools libtss2-tcti-swtpm0 \
  tpm2-openssl tpm2-abrmd libtss2-tcti-tabrmd0 dbus-daemon softhsm2 postgresql postgresql-client
npm run --silent build
echo "mayfly: typecheck" >&2
npx tsc -p tsconfig.json --noEmit
echo "mayfly: lint" >&2
npx biome check .
echo "mayfly: tests" >&2
npx vitest run "$@"
