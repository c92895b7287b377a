// One rank of a data-parallel run (or a single process when WORLD_SIZE is unset), for the
// distributed tests. argv: output checkpoint, batch size, epochs, [timeout ms]. SIGUSR2 aborts this
// process's training through its AbortSignal.
import { VideoRNN } from '../../dist/index.js';
import { makeClip, memoryDataset } from './clips.mjs';

const [output, batchSize, epochs, timeoutMs] = process.argv.slice(2);
const classes = ['a', 'b', 'c'];
const data = memoryDataset(classes, Array.from({ length: 24 }, (_, index) => ({ clip: makeClip(2 + (index % 5), 32, 300 + index), label: index % 3 })));
const rank = Number(process.env.RANK ?? 0);
try {
  // A different seed per rank: rank 0's broadcast must make them equal.
  const model = await VideoRNN.create({ classes, hiddenSize: 8, headSize: 8, frameSize: 32, seed: 100 + rank });
  const controller = new AbortController();
  process.on('SIGUSR2', () => controller.abort());
  const report = await model.train(data, { signal: controller.signal, epochs: Number(epochs), batchSize: Number(batchSize), learningRate: 0.05, optimizer: 'sgd', seed: 1,
    distributed: process.env.WORLD_SIZE ? { timeoutMs: Number(timeoutMs ?? 30000) } : undefined,
    onProgress: (event) => process.stdout.write(`${JSON.stringify({ progress: event.batch, epoch: event.epoch })}\n`) });
  await model.save(output);
  process.stdout.write(`${JSON.stringify({ done: true, losses: report.epochs.map((epoch) => epoch.loss) })}\n`);
  model.dispose();
} catch (error) {
  process.stdout.write(`${JSON.stringify({ error: error.code, message: error.message })}\n`);
  process.exitCode = 3;
}
