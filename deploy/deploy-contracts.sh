#!/usr/bin/env bash
# Deploys the registry (implementation + UUPS proxy) from the committed artifacts to any RPC URL
# and writes the addresses as JSON. The deployer's key comes from a file or the environment,
# never from the command line.
#
# Usage: SNPKMS_OWNER_KEY=0x... deploy/deploy-contracts.sh https://rpc.example deployment.json
#    or: deploy/deploy-contracts.sh https://rpc.example deployment.json --key-file ./deployer.key
set -euo pipefail
RPC=${1:?rpc url}
OUT=${2:?output file}
shift 2
exec snpkms gov deploy --rpc-url "$RPC" --out "$OUT" "$@"
