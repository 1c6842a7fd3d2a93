#!/usr/bin/env bash
# Rebuilds the Solidity contracts from scratch (scripts/export-contracts.js does a clean,
# src-only build in a temporary directory), exports the trimmed artifacts into a temporary
# directory and fails (with a diff) if they differ from the committed contracts/artifacts/*.json.
# Needs `npm ci --ignore-scripts` to have been run at the repo root.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [[ ! -x "${FORGE:-node_modules/.bin/forge}" ]]; then
    echo "check-contracts: ${FORGE:-node_modules/.bin/forge} not found; run 'npm ci --ignore-scripts' first" >&2
    exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

node scripts/export-contracts.js --dest "$tmp/artifacts" >/dev/null

status=0
for f in "$tmp"/artifacts/*.json; do
    name="$(basename "$f")"
    if [[ ! -e "contracts/artifacts/$name" ]]; then
        echo "check-contracts: contracts/artifacts/$name is missing" >&2
        status=1
    elif ! diff -u "contracts/artifacts/$name" "$f" >"$tmp/diff.txt" 2>&1; then
        echo "check-contracts: contracts/artifacts/$name is stale:" >&2
        # bytecode lines are huge: show at most 400 characters of each diff line
        cut -c1-400 "$tmp/diff.txt" | head -n 200 >&2
        status=1
    fi
done
for f in contracts/artifacts/*.json; do
    [[ -e "$f" ]] || continue
    [[ -e "$tmp/artifacts/$(basename "$f")" ]] || {
        echo "check-contracts: unexpected committed artifact $f" >&2
        status=1
    }
done
if [[ $status -ne 0 ]]; then
    echo "check-contracts: FAILED; regenerate with: node scripts/export-contracts.js" >&2
    exit 1
fi
echo "check-contracts: contracts/artifacts/*.json are up to date"
