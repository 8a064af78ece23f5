#!/usr/bin/env node
// s3server.js - starts the pinned @20minutes/s3rver on 127.0.0.1 for o7's
// storage tests, through its lib/cli module (the package's bin does not run).
//
//   node --openssl-legacy-provider s3server.js --port N --dir PATH [--bucket NAME]...
//
// Extra credential pairs come from the environment, never argv:
// S3RVER_EXTRA_CREDS="ACCESS:SECRET,ACCESS2:SECRET2" (S3RVER/S3RVER always
// works). Prints "S3rver listening on 127.0.0.1:PORT" once it accepts
// requests; port 0 picks a free one. Stops on SIGTERM/SIGINT.
'use strict';

const path = require('path');

const root = path.join(__dirname, '..', 'node_modules', '@20minutes', 's3rver', 'lib');
const program = require(path.join(root, 'cli.js'));
const { DUMMY_ACCOUNT } = require(path.join(root, 'models', 'account.js'));

function parseArgs(argv) {
  const opts = { port: '0', dir: null, buckets: [] };
  for (let i = 0; i < argv.length; i++) {
    const next = argv[i + 1];
    if (argv[i] === '--port' && next !== undefined) opts.port = next, i++;
    else if (argv[i] === '--dir' && next !== undefined) opts.dir = next, i++;
    else if (argv[i] === '--bucket' && next !== undefined) opts.buckets.push(next), i++;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!opts.dir) throw new Error('--dir is required');
  return opts;
}

function registerCredentials(spec) {
  for (const pair of (spec || '').split(',').filter(Boolean)) {
    const colon = pair.indexOf(':');
    if (colon <= 0) throw new Error('S3RVER_EXTRA_CREDS wants ACCESS:SECRET pairs');
    DUMMY_ACCOUNT.createKeyPair(pair.slice(0, colon), pair.slice(colon + 1));
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  registerCredentials(process.env.S3RVER_EXTRA_CREDS);
  // Always loopback: the address is fixed here, not taken from the caller.
  const args = ['node', 's3rver', '-d', opts.dir, '-a', '127.0.0.1', '-p', opts.port, '-s'];
  for (const b of opts.buckets) args.push('--configure-bucket', b);
  await program.parseAsync(args);
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error(`s3server: ${err.message}`);
  process.exit(1);
});
