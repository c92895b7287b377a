// Real servers on an ephemeral loopback port for the serving tests, and what they answer.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import Fastify from 'fastify';
// Through the package's own subpath export, as users import it.
import { videoRNNPlugin } from 'video-rnn/fastify';

/** A Fastify app with the plugin, listening on 127.0.0.1 at a port the kernel picks. */
export async function startServer(pluginOptions) {
  const app = Fastify({ logger: false });
  await app.register(videoRNNPlugin, pluginOptions);
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url: address };
}

export async function json(response) {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`expected JSON, got ${response.status}: ${text}`);
  }
}

/** Posts a video file's bytes as the raw body. */
export function postRaw(url, file, { type = 'video/mp4', query = '', headers = {}, signal } = {}) {
  return fetch(`${url}/v1/predict${query}`, { method: 'POST', headers: { 'content-type': type, ...headers }, body: fs.readFileSync(file), signal });
}

/** Posts files as multipart/form-data, one part each, in order. */
export function postMultipart(url, files, { query = '', headers = {} } = {}) {
  const form = new FormData();
  files.forEach((file, index) => form.append(`video${index}`, new Blob([fs.readFileSync(file)], { type: 'video/mp4' }), `clip${index}.mp4`));
  return fetch(`${url}/v1/predict${query}`, { method: 'POST', body: form, headers });
}

/** Checks an error response: status, JSON shape and code. */
export async function assertError(response, status, code) {
  const body = await json(response);
  assert.equal(response.status, status, JSON.stringify(body));
  assert.equal(body.error?.code, code, JSON.stringify(body));
  assert.equal(typeof body.error.message, 'string');
  return body;
}

export function assertEmptyFolder(folder, after) {
  assert.deepEqual(fs.readdirSync(folder), [], `temporary files left after ${after}`);
}

/**
 * Parses the Prometheus text exposition format (version 0.0.4) strictly: every line is a comment,
 * blank, or `name{label="value",...} number`; anything else fails. `value(name, labels)` finds one
 * sample whose labels include the given ones.
 */
export function parsePrometheus(text) {
  const samples = [];
  const types = new Map();
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)(?: -?\d+)?$/;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const typeLine = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (typeLine) {
      types.set(typeLine[1], typeLine[2]);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* /.test(line)) continue;
    const match = sample.exec(line);
    assert.ok(match, `not Prometheus text: ${line}`);
    const labels = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  const value = (name, labels = {}) => {
    const found = samples.filter((entry) => entry.name === name
      && Object.entries(labels).every(([key, wanted]) => entry.labels[key] === wanted));
    return found.length === 0 ? undefined : found.reduce((sum, entry) => sum + entry.value, 0);
  };
  return { samples, types, value };
}
