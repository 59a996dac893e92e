#!/bin/bash
# build-tree.sh TREE OUT: compiles a checkout's src, test and scripts to OUT so that plain node
# runs them (as production runs the build: tsx names every closure at creation), for
# scripts/bench/http-cpu.ts --tree OUT.
set -euo pipefail
tree=$(cd "$1" && pwd)
rm -rf "$2"
mkdir -p "$2"
out=$(cd "$2" && pwd)
(cd "$tree" && npx tsc -p tsconfig.json --outDir "$out" >/dev/null)
echo '{"type":"module"}' >"$out/package.json"
ln -s "$tree/node_modules" "$out/node_modules"
