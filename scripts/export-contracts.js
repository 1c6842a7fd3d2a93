#!/usr/bin/env node
// Writes trimmed, deterministic contract artifacts for the Rust side (alloy `sol!`):
//   contracts/artifacts/{KmsRegistry,AppAuth,ERC1967Proxy}.json
// each exactly {"abi": [...], "bytecode": {"object": "0x..."}, "deployedBytecode": {"object": "0x..."}},
// pretty-printed (2 spaces) with recursively sorted object keys and a trailing newline.
//
// Usage:
//   node scripts/export-contracts.js [--dest contracts/artifacts]
//       Does its own clean build (FOUNDRY_PROFILE=artifacts: contracts/src only, --force,
//       into a temporary out/cache dir) and exports from it. This is the canonical way:
//       solc's output depends on the whole compilation unit, and forge's incremental
//       builds of contracts/out compile varying subsets of files, so bytecode taken from
//       contracts/out after incremental rebuilds may differ by a few bytes.
//   node scripts/export-contracts.js --forge-out DIR [--dest DIR]
//       Exports from an existing forge out dir instead (no build).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const repoRoot = path.resolve(__dirname, '..');

// artifact name -> path of the forge artifact, relative to the forge out dir
const CONTRACTS = {
  KmsRegistry: 'KmsRegistry.sol/KmsRegistry.json',
  AppAuth: 'AppAuth.sol/AppAuth.json',
  ERC1967Proxy: 'ERC1967Proxy.sol/ERC1967Proxy.json',
};

function parseArgs(argv) {
  const opts = {
    forgeOut: null,
    dest: path.join(repoRoot, 'contracts/artifacts'),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--forge-out') opts.forgeOut = path.resolve(argv[++i]);
    else if (a === '--dest') opts.dest = path.resolve(argv[++i]);
    else {
      console.error(`export-contracts: unknown argument ${a}`);
      process.exit(2);
    }
  }
  return opts;
}

function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v).sort()) o[k] = sortKeys(v[k]);
    return o;
  }
  return v;
}

function hexObject(field, name) {
  const obj = field && typeof field === 'object' ? field.object : field;
  if (typeof obj !== 'string' || !/^0x[0-9a-f]*$/.test(obj)) {
    throw new Error(`${name}: missing or non-hex bytecode (unlinked library placeholder?)`);
  }
  return obj;
}

function cleanBuild(tmp) {
  const forge = process.env.FORGE || path.join(repoRoot, 'node_modules/.bin/forge');
  const out = path.join(tmp, 'out');
  const res = spawnSync(
    forge,
    ['build', '--offline', '--force', '--out', out, '--cache-path', path.join(tmp, 'cache')],
    {
      cwd: repoRoot,
      env: { ...process.env, FOUNDRY_PROFILE: 'artifacts' },
      encoding: 'utf8',
    }
  );
  if (res.error || res.status !== 0) {
    process.stderr.write((res.stdout || '') + (res.stderr || ''));
    console.error(`export-contracts: forge build failed (${res.error ? res.error.message : 'exit ' + res.status})`);
    process.exit(1);
  }
  return out;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  let tmp = null;
  if (!opts.forgeOut) {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'snpkms-contracts-'));
    opts.forgeOut = cleanBuild(tmp);
  }
  try {
    exportAll(opts);
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function exportAll(opts) {
  fs.mkdirSync(opts.dest, { recursive: true });
  for (const [name, rel] of Object.entries(CONTRACTS)) {
    const src = path.join(opts.forgeOut, rel);
    if (!fs.existsSync(src)) {
      console.error(`export-contracts: ${src} not found; run \`forge build\` first`);
      process.exit(1);
    }
    const art = JSON.parse(fs.readFileSync(src, 'utf8'));
    const bytecode = hexObject(art.bytecode, `${name}.bytecode`);
    const deployed = hexObject(art.deployedBytecode, `${name}.deployedBytecode`);
    if (bytecode === '0x') throw new Error(`${name}: empty bytecode (abstract contract?)`);
    const trimmed = {
      abi: sortKeys(art.abi),
      bytecode: { object: bytecode },
      deployedBytecode: { object: deployed },
    };
    const out = path.join(opts.dest, `${name}.json`);
    fs.writeFileSync(out, JSON.stringify(trimmed, null, 2) + '\n');
    console.log(`export-contracts: wrote ${path.relative(process.cwd(), out) || out}`);
  }
}

main();
