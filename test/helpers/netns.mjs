// Two "machines" on one host: two network namespaces joined by a veth pair, 10.231.0.1 and
// 10.231.0.2 (a range used by nothing else here). Creating them needs root (CI runs as root). Under
// CI=true a failure to create them fails the test; elsewhere the test is skipped and says why.
// The namespaces, and any process still inside them, are removed in every outcome.
import { execFileSync } from 'node:child_process';
import { startCli } from '../cli.run.mjs';

export const addresses = ['10.231.0.1', '10.231.0.2'];

let serial = 0;

function ip(args) {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Kills what still runs inside a namespace, then deletes it (its end of the veth pair goes with it). */
function remove(name) {
  let pids = [];
  try {
    pids = ip(['netns', 'pids', name]).split('\n').filter(Boolean).map(Number);
  } catch {
    return;
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  try {
    ip(['netns', 'del', name]);
  } catch {
    // already gone
  }
}

/** Processes running in a namespace (orphans left by a test show up here). */
export function processesIn(name) {
  try {
    return ip(['netns', 'pids', name]).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Creates the two namespaces for test `t`, with unique names for this process, and removes them
 * when the test ends. Returns undefined (after t.skip) when they cannot be created outside CI.
 */
export function twoMachines(t) {
  serial += 1;
  const tag = `vr${process.pid}x${serial}`;
  const names = [`${tag}a`, `${tag}b`];
  const links = [`${tag}A`, `${tag}B`].map((link) => link.slice(-15));
  const cleanup = () => names.forEach(remove);
  process.once('exit', cleanup);
  t.after(() => {
    cleanup();
    process.off('exit', cleanup);
  });
  try {
    ip(['netns', 'add', names[0]]);
    ip(['netns', 'add', names[1]]);
    ip(['link', 'add', links[0], 'type', 'veth', 'peer', 'name', links[1]]);
    for (const index of [0, 1]) {
      ip(['link', 'set', links[index], 'netns', names[index]]);
      ip(['-n', names[index], 'addr', 'add', `${addresses[index]}/24`, 'dev', links[index]]);
      ip(['-n', names[index], 'link', 'set', links[index], 'up']);
      ip(['-n', names[index], 'link', 'set', 'lo', 'up']);
    }
  } catch (error) {
    cleanup();
    const reason = `two network namespaces could not be created (${String(error.stderr || error.message).trim()}); this needs root and iproute2`;
    if (process.env.CI === 'true') throw new Error(reason, { cause: error });
    t.skip(reason);
    return undefined;
  }
  /** Starts `node dist/cli.js ...args` inside machine `index` (0 or 1); `onStderr` sees the stderr so far. */
  const start = (index, args, options = {}) => {
    const run = startCli(args, { timeoutMs: 240_000, ...options, prefix: ['ip', 'netns', 'exec', names[index]] });
    let stderr = '';
    run.child.stderr.on('data', (text) => {
      stderr += text;
      options.onStderr?.(stderr);
    });
    return run;
  };
  return { names, links, addresses, start };
}
