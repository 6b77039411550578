#!/usr/bin/env bash
# Bundles openapi/openapi.yaml into one document and generates its TypeScript types, and the
# problem types of each operation (openapi-typescript leaves the contract's extensions out).
# With --check, generates into a temporary folder and fails if openapi/dist/ differs from it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=openapi/dist
if [ "${1:-}" = "--check" ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
quiet() { "$@" >/dev/null 2>"$out/.log" || { cat "$out/.log" >&2; exit 1; }; }
quiet npx redocly lint openapi/openapi.yaml
quiet npx redocly bundle openapi/openapi.yaml -o "$out/openapi.json"
quiet npx openapi-typescript "$out/openapi.json" -o "$out/types.ts"
quiet npx tsx scripts/problem-types.ts "$out/openapi.json" "$out/problem-types.ts"
rm -f "$out/.log"
if [ "${1:-}" = "--check" ]; then
  if ! diff -r -u openapi/dist "$out" >&2; then
    echo "openapi/dist/ is out of date with openapi/openapi.yaml: run 'npm run generate' and commit the result." >&2
    exit 1
  fi
  echo "contract: linted; openapi/dist/ is current"
fi
