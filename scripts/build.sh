#!/usr/bin/env bash
# The production build: the service, the worker and the operator scripts compiled to JavaScript in
# build/, beside the files they read at run time (migrations, the contract, the SOP definitions and
# the record kinds), at the same relative places. Run it with plain Node: `npm run start:prod`.
# Usage: scripts/build.sh [output directory, default build]
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-build}")

rm -rf "$out"
npx tsc -p tsconfig.build.json --outDir "$out"
cp -r sql "$out/sql"
cp openapi/dist/openapi.json "$out/openapi/dist/"
(cd src && find . -name '*.json' -exec cp --parents {} "$out/src/" \;)
echo "built into $out: npm run start:prod (API), npm run worker:prod (jobs, PostgreSQL only)"
