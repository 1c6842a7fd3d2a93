#!/usr/bin/env bash
# End-to-end smoke test of the exported artifacts (contracts/artifacts/*.json) on a local
# anvil: deploy KmsRegistry behind an ERC1967Proxy exactly as the Rust side would, register
# an app, configure it and query isAppAllowed / verifyAppKey with cast.
# Only talks to 127.0.0.1. Needs `npm ci --ignore-scripts`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bin="$root/node_modules/.bin"
port="${ANVIL_PORT:-$((20000 + RANDOM % 20000))}"
rpc="http://127.0.0.1:$port"
# anvil's well-known first dev account
pk=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
owner=0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266

"$bin/anvil" --port "$port" --silent >/dev/null 2>&1 &
anvil_pid=$!
trap 'kill "$anvil_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    "$bin/cast" chain-id --rpc-url "$rpc" >/dev/null 2>&1 && break
    sleep 0.1
done

obj() { node -e 'process.stdout.write(require(process.argv[1])[process.argv[2]].object)' "$root/contracts/artifacts/$1.json" "$2"; }
deploy() { "$bin/cast" send --rpc-url "$rpc" --private-key "$pk" --json --create "$@" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);if(r.status!=="0x1")process.exit(1);console.log(r.contractAddress)})'; }
send() { "$bin/cast" send --rpc-url "$rpc" --private-key "$pk" "$@" >/dev/null; }
call() { "$bin/cast" call --rpc-url "$rpc" "$@"; }
expect() { if [[ "$2" != "$3" ]]; then echo "smoke-contracts: $1: got '$2', want '$3'" >&2; exit 1; fi; }

impl="$(deploy "$(obj KmsRegistry bytecode)")"
init="$("$bin/cast" calldata 'initialize(address)' "$owner")"
proxy_args="$("$bin/cast" abi-encode 'constructor(address,bytes)' "$impl" "$init")"
registry="$(deploy "$(obj ERC1967Proxy bytecode)${proxy_args#0x}")"
expect owner "$(call "$registry" 'owner()(address)')" "$owner"

# deployed code of the implementation matches the artifact except for immutables
code="$("$bin/cast" code --rpc-url "$rpc" "$impl")"
expect "deployed code length" "${#code}" "$(obj KmsRegistry deployedBytecode | wc -c)"

m="0x$(printf '11%.0s' $(seq 1 48))"
chip="0x$(printf '31%.0s' $(seq 1 64))"
compose=0x$(printf 'ab%.0s' $(seq 1 32))
send "$registry" 'addOsImage(bytes)' "$m"
send "$registry" 'setMinTcb(uint8,(uint8,uint8,uint8,uint8,uint8))' 1 '(1,0,1,1,0)'
salt=0x0000000000000000000000000000000000000000000000000000000000000001
app="$(call "$registry" 'predictAppAddress(address,bytes32)(address)' "$owner" "$salt")"
send "$registry" 'registerApp(bytes32)' "$salt"
expect registered "$(call "$registry" 'isAppRegistered(address)(bool)' "$app")" true
send "$app" 'addComposeHash(bytes32)' "$compose"
send "$app" 'addDevice(bytes32)' "$("$bin/cast" keccak "$chip")"

sig='isAppAllowed((bytes,bytes,address,bytes32,uint8,(uint8,uint8,uint8,uint8,uint8),(uint8,uint8,uint8,uint8,uint8),(uint8,uint8,uint8,uint8,uint8),bytes32,uint32))(bool,string)'
info() { echo "($m,$chip,$app,$compose,1,$1,$1,$1,0x0000000000000000000000000000000000000000000000000000000000000000,0)"; }
expect "isAppAllowed ok" "$(call "$registry" "$sig" "$(info '(1,0,1,1,0)')" | tr '\n' ' ')" 'true "" '
expect "isAppAllowed low tcb" "$(call "$registry" "$sig" "$(info '(1,0,0,1,0)')" | tr '\n' ' ')" 'false "tcb below minimum" '

# verifyAppKey with the fixed vector of contracts/README.md (root = private key 1)
send "$registry" 'setKmsInfo(address,bytes)' 0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf 0x
vec_sig=0x7dbeadf2427e35090903b403571ff8b2e882ac8f541afe90a44897bab3a7e9da4d87d1aacb7c98fdc1019cd6ecb54d6d418d6ff29a940570868773e45cc873181c
expect verifyAppKey "$(call "$registry" 'verifyAppKey(address,address,uint32,bytes)(bool)' \
    0x1111111111111111111111111111111111111111 0x2222222222222222222222222222222222222222 7 "$vec_sig")" true

echo "smoke-contracts: ok (registry $registry, app $app on anvil :$port)"
