// `train --nnodes 2` on two "machines": network namespaces joined by a veth pair (see helpers/netns.mjs).
// Each node runs the same command with its own --node-rank; Gloo listens on each node's own address.
// All runs start from one backbone file written once, so their checkpoints are small. Each test runs
// alone (--test-name-pattern): the one-process reference two tests compare with is made on first use.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { maxParameterDifference } from './helpers/clips.mjs';
import { temporaryFolder } from './helpers/media.mjs';
import { processesIn, twoMachines } from './helpers/netns.mjs';
import { FeatureStore, VideoRNN } from '../dist/index.js';
import { readSafetensors } from '../dist/weights/index.js';
import { errorLines, parseJson, runCli, tinyDataset } from './cli.run.mjs';

const folder = temporaryFolder(after);
const datasetFolder = path.join(folder, 'data');
// SGD: Adam's normalisation magnifies the last-bit differences between summing 2x2 and 4 gradients.
const backbone = path.join(folder, 'vgg16.safetensors');
const settings = ['--hidden-size', '8', '--head-size', '8', '--frame-size', '32', '--epochs', '2', '--optimizer', 'sgd',
  '--lr', '0.05', '--seed', '3', '--json', '--threads', '1', '--weights', backbone];
let port = 29700 + (process.pid % 200) * 10;

before(async () => {
  await tinyDataset(datasetFolder);
  const random = await VideoRNN.create({ classes: ['left', 'right'], hiddenSize: 8, frameSize: 32, seed: 3 });
  try {
    await random.saveBackbone(backbone);
  } finally {
    random.dispose();
  }
});

const single = path.join(folder, 'single.safetensors');
let singleRun;
/** One process with the combined batch of 4: what the several-machine runs must equal. Trained once. */
function singleReference() {
  singleRun ??= runCli(['train', datasetFolder, '-o', single, '--batch-size', '4', ...settings], { timeoutMs: 240_000 }).then((alone) => {
    assert.equal(alone.code, 0, alone.stderr);
    return parseJson(alone);
  });
  return singleRun;
}

/** The same command on both machines, node 0 hosting the rendezvous on its own address. */
function nodeCommand(machines, node, output, extra) {
  return ['train', datasetFolder, '-o', output, '--nnodes', '2', '--node-rank', String(node), '--master-addr', machines.addresses[0],
    '--master-port', String(port), '--dist-timeout', '20', ...settings, ...extra];
}

test('--nnodes 2 --nproc 1 on two machines trains the same model as one process with the combined batch', async (t) => {
  const machines = twoMachines(t);
  if (!machines) return;
  port += 1;
  const outputs = [path.join(folder, 'node0.safetensors'), path.join(folder, 'node1.safetensors')];
  const runs = [0, 1].map((node) => machines.start(node, nodeCommand(machines, node, outputs[node], ['--nproc', '1', '--batch-size', '2'])));
  const [zero, one] = await Promise.all(runs.map((run) => run.finished));
  assert.equal(zero.code, 0, zero.stderr);
  assert.equal(one.code, 0, one.stderr);
  assert.deepEqual(errorLines(one).filter((line) => /E_[A-Z]/.test(line)), [], 'node 1 reported no problem');
  const report = parseJson(zero);
  assert.equal(one.stdout, '', 'node 1 (rank 1) prints no result');
  const lossGap = Math.abs(report.training.loss - (await singleReference()).training.loss);
  const weightGap = await maxParameterDifference(outputs[0], single);
  t.diagnostic(`two nodes vs one process: loss difference ${lossGap}, largest weight difference ${weightGap}`);
  assert.ok(lossGap < 1e-5, `loss differs by ${lossGap}`);
  assert.ok(weightGap < 1e-5, `weights differ by ${weightGap}`);
});

/** One node started alone against `masterAddr`; resolves with its result and how long it ran. */
async function alone(machines, node, masterAddr, timeoutSeconds) {
  port += 1;
  const args = ['train', datasetFolder, '-o', path.join(folder, `alone${node}.safetensors`), '--nnodes', '2', '--node-rank', String(node),
    '--nproc', '1', '--master-addr', masterAddr, '--master-port', String(port), '--dist-timeout', String(timeoutSeconds), ...settings];
  const started = Date.now();
  const result = await machines.start(node, args).finished;
  return { result, seconds: (Date.now() - started) / 1000 };
}

test('a master address nobody answers gives E_DISTRIBUTED naming it, within the rendezvous timeout', async (t) => {
  const machines = twoMachines(t);
  if (!machines) return;
  // 10.231.0.9 is on node 1's network, but no machine has it.
  const { result, seconds } = await alone(machines, 1, '10.231.0.9', 5);
  t.diagnostic(`failed after ${seconds} s (rendezvous timeout 5 s)`);
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, new RegExp(`E_DISTRIBUTED: .*10\\.231\\.0\\.9:${port}`));
  // The process start (LibTorch, ffmpeg probe) comes on top of the 5 s; the default timeout is 60 s.
  assert.ok(seconds < 30, `took ${seconds} s`);
});

test('--nnodes 2 with a loopback master address is refused before the rendezvous', async (t) => {
  const machines = twoMachines(t);
  if (!machines) return;
  const { result, seconds } = await alone(machines, 0, '127.0.0.1', 30);
  t.diagnostic(`refused after ${seconds} s (rendezvous timeout 30 s)`);
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /E_DISTRIBUTED: .*loopback address 127\.0\.0\.1.*--iface/);
  assert.ok(seconds < 25, 'refused without waiting for the 30 s rendezvous');
});

test('--nnodes 2 --nproc 2 (4 ranks, Gloo on the interface GLOO_SOCKET_IFNAME names) equals one process with batch 4', async (t) => {
  const machines = twoMachines(t);
  if (!machines) return;
  port += 1;
  const outputs = [path.join(folder, 'four0.safetensors'), path.join(folder, 'four1.safetensors')];
  const runs = [0, 1].map((node) => machines.start(node, nodeCommand(machines, node, outputs[node], ['--nproc', '2', '--batch-size', '1']),
    { env: { GLOO_SOCKET_IFNAME: machines.links[node] } }));
  const [zero, one] = await Promise.all(runs.map((run) => run.finished));
  assert.equal(zero.code, 0, zero.stderr);
  assert.equal(one.code, 0, one.stderr);
  await singleReference();
  const gap = await maxParameterDifference(outputs[0], single);
  t.diagnostic(`4 ranks on two nodes vs one process: largest weight difference ${gap}`);
  assert.ok(gap < 1e-5, `weights differ by ${gap}`);
});

test('node 1 dying mid-run: node 0 exits with E_DISTRIBUTED within the timeout + 10 s, no orphan; --resume on both completes', async (t) => {
  const machines = twoMachines(t);
  if (!machines) return;
  port += 1;
  const timeout = 10;
  const outputs = [path.join(folder, 'dead0.safetensors'), path.join(folder, 'dead1.safetensors')];
  const run = (node, extra, options) => machines.start(node, nodeCommand(machines, node, outputs[node],
    ['--nproc', '1', '--batch-size', '2', '--checkpoint-every', '1', '--dist-timeout', String(timeout), ...extra]), options);
  let progressed;
  const reached = new Promise((resolve) => { progressed = resolve; });
  const zero = run(0, ['--epochs', '40'], { onStderr: (text) => { if (/^epoch +2\/40 /m.test(text)) progressed(); } });
  const one = run(1, ['--epochs', '40']);
  await Promise.race([reached, zero.finished]);
  // The whole machine goes: its launcher and its worker, without a chance to say goodbye.
  const victims = processesIn(machines.names[1]);
  assert.ok(victims.length >= 2, `node 1 runs a launcher and a worker: ${victims}`);
  const killedAt = Date.now();
  for (const pid of victims) process.kill(pid, 'SIGKILL');
  const result = await zero.finished;
  const seconds = (Date.now() - killedAt) / 1000;
  await one.finished;
  t.diagnostic(`node 0 stopped ${seconds} s after node 1 died (collective timeout ${timeout} s)`);
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /E_DISTRIBUTED/);
  assert.ok(seconds < timeout + 10, `node 0 took ${seconds} s`);
  assert.deepEqual(processesIn(machines.names[0]), [], 'no worker of node 0 is left running');

  const epochs = await Promise.all(outputs.map(async (output) => JSON.parse((await readSafetensors(`${output}.state`)).metadata.state).epoch));
  t.diagnostic(`checkpoints after the failure: node 0 epoch ${epochs[0]}, node 1 epoch ${epochs[1]}`);
  assert.equal(epochs[0], epochs[1], 'both machines kept the same epoch');
  // Each save wrote the LSTM and head only, referencing the backbone file.
  for (const output of outputs) assert.ok(fs.statSync(output).size < 2e6, `${output}: ${fs.statSync(output).size} bytes`);
  port += 1;
  const target = epochs[0] + 2;
  const resumed = await Promise.all([0, 1].map((node) => run(node, ['--epochs', String(target), '--resume', outputs[node]]).finished));
  assert.equal(resumed[0].code, 0, resumed[0].stderr);
  assert.equal(resumed[1].code, 0, resumed[1].stderr);
  assert.deepEqual(parseJson(resumed[0]).training.epochs.map((epoch) => epoch.epoch), [target - 1, target]);
  assert.ok(await maxParameterDifference(outputs[0], outputs[1]) === 0, 'both machines saved the same weights');
});

test('--nnodes 2: two machines extract into one folder both see, each on its own shard, every entry once', async (t) => {
  const machines = twoMachines(t);
  if (!machines) return;
  port += 1;
  const store = path.join(folder, 'features');
  const command = (node) => ['extract', datasetFolder, '--features', store, '--frame-size', '32', '--weights', backbone, '--threads', '1',
    '--nnodes', '2', '--node-rank', String(node), '--nproc', '1', '--master-addr', machines.addresses[0], '--master-port', String(port),
    '--dist-timeout', '20', '--json'];
  const [zero, one] = await Promise.all([0, 1].map((node) => machines.start(node, command(node)).finished));
  assert.equal(zero.code, 0, zero.stderr);
  assert.equal(one.code, 0, one.stderr);
  const report = parseJson(zero);
  const clips = fs.readdirSync(datasetFolder, { recursive: true }).filter((name) => name.endsWith('.mp4')).length;
  assert.equal(report.clips, clips);
  assert.equal(report.computed, clips, 'each clip computed once, by one machine');
  const stats = await (await FeatureStore.open(store, () => undefined)).stats();
  assert.equal(stats.entries, clips);
  assert.equal(stats.corrupt, 0);
  assert.equal(stats.claims, 0);
});
