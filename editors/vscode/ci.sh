#!/usr/bin/env bash
# CI for the VS Code extension: clean install, type check, unit tests, build, package.
set -euo pipefail
cd "$(dirname "$0")"
start=$(date +%s)
echo "== npm ci"
npm ci --no-audit --no-fund
echo "== type check"
npm run --silent typecheck
echo "== unit tests"
npm test
echo "== build"
npm run build
echo "== package"
rm -f moe-lsp-*.vsix
npm run package
ls -l moe-lsp-*.vsix
echo "== ci.sh done in $(( $(date +%s) - start )) s"
