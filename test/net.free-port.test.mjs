// The one free-port helper that the CLI launcher, the tests and the benchmarks share.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { freePort } from '../dist/free-port.js';

const listen = (port, host) => new Promise((resolve, reject) => {
  const server = net.createServer();
  server.once('error', reject);
  server.listen(port, host, () => resolve(server));
});

test('freePort gives a port that can be listened on at once, on the host asked for', async () => {
  for (const host of ['127.0.0.1', undefined]) {
    const port = await freePort(host);
    assert.ok(Number.isInteger(port) && port > 0 && port < 65536, String(port));
    const server = await listen(port, host ?? '127.0.0.1');
    assert.equal(server.address().port, port);
    await new Promise((resolve) => server.close(resolve));
  }
});

test('freePort rejects for an address that is not this machine, instead of hanging', async () => {
  // 203.0.113.0/24 is TEST-NET-3 (RFC 5737): never a local address.
  await assert.rejects(freePort('203.0.113.7'), (error) => typeof error.code === 'string');
});
