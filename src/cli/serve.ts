// `video-rnn serve <model>`: the Fastify plugin in a server of its own, with pino JSON logs (one
// request id per request) and a graceful stop: on SIGTERM or SIGINT it stops listening, lets the
// requests in flight finish within --drain-seconds, and exits 0.
import { randomUUID } from 'node:crypto';
import { Command, Option } from 'commander';
import { VideoRNN } from '../model';
import type { Device, Precision } from '../options';
import * as parse from './arguments';
import { addBackboneOption, addDeviceOption, addPrecisionOption, precisionInUse } from './common';
import { exitCodes } from './errors';

interface ServeFlags {
  backbone?: string;
  port: number;
  host: string;
  device: Device;
  precision: Precision;
  threads?: number;
  maxBatchClips: number;
  maxDelayMs: number;
  maxQueue: number;
  timeoutMs: number;
  decodeConcurrency?: number;
  maxVideoSeconds: number;
  maxBodyMb: number;
  maxFiles: number;
  allowPaths?: string;
  apiKey?: string;
  tempDir?: string;
  drainSeconds: number;
  logLevel: string;
}

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function registerServe(program: Command): void {
  const command = program.command('serve')
    .description('serve a saved model over HTTP: POST /v1/predict, GET /v1/model, /healthz, /readyz, /metrics')
    .argument('<model>', 'a model saved by train or fine-tune (.safetensors)')
    .option('--port <n>', 'TCP port (0: any free port)', parse.integerBetween(0, 65535), 8080)
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--threads <n>', 'intra-op threads (default: all cores)', parse.positiveInteger)
    .option('--max-batch-clips <n>', 'clips per native batch (1: no dynamic batching)', parse.integerBetween(1, 1024), 8)
    .option('--max-delay-ms <ms>', 'how long a batch waits for more clips after its first', parse.nonNegativeNumber, 5)
    .option('--max-queue <n>', 'clips waiting at most; beyond it requests get 503', parse.positiveInteger, 64)
    .option('--timeout-ms <ms>', 'a request unanswered after this gets 504', parse.positiveInteger, 30_000)
    .option('--decode-concurrency <n>', 'videos decoded at once (default: the number of cores)', parse.positiveInteger)
    .option('--max-video-seconds <s>', 'longer videos get 422', parse.positiveNumber, 600)
    .option('--max-body-mb <mb>', 'largest request body; larger ones get 413', parse.positiveNumber, 100)
    .option('--max-files <n>', 'most videos in one request', parse.integerBetween(1, 1024), 16)
    .option('--allow-paths <dir>', 'accept JSON bodies naming video files, read only inside DIR (after symlinks)')
    .option('--api-key <key>', 'require this key (Authorization: Bearer KEY or X-API-Key); or set VIDEO_RNN_API_KEY')
    .option('--temp-dir <dir>', 'where uploads are kept while they are decoded (default: the system temp folder)')
    .option('--drain-seconds <s>', 'on SIGTERM/SIGINT, how long requests in flight may take to finish', parse.positiveNumber, 30)
    .addOption(new Option('--log-level <level>', 'pino log level').choices(logLevels).default('info'));
  addDeviceOption(command);
  addBackboneOption(command);
  addPrecisionOption(command);
  command.action(async (modelFile: string, flags: ServeFlags) => serve(modelFile, flags));
}

async function serve(modelFile: string, flags: ServeFlags): Promise<void> {
  // Loaded here, not at the top, so the other commands do not pay for the HTTP stack.
  const [{ default: Fastify }, { videoRNNPlugin }] = await Promise.all([import('fastify'), import('../fastify')]);
  const model = await VideoRNN.load(modelFile, { device: flags.device, precision: flags.precision, threads: flags.threads , backboneWeights: flags.backbone });
  const app = Fastify({
    logger: { level: flags.logLevel },
    genReqId: () => randomUUID(),
    requestIdHeader: 'x-request-id',
    // The plugin checks the size of video bodies itself, as they stream to disk.
    bodyLimit: Math.ceil(flags.maxBodyMb * 2 ** 20),
  });
  app.addHook('onSend', async (request, reply) => { reply.header('x-request-id', request.id); });
  let stopping: Promise<void> | undefined;
  try {
    await app.register(videoRNNPlugin, {
      model,
      serviceOptions: {
        maxBatchClips: flags.maxBatchClips, maxDelayMs: flags.maxDelayMs, maxQueue: flags.maxQueue, timeoutMs: flags.timeoutMs,
        decodeConcurrency: flags.decodeConcurrency, maxVideoSeconds: flags.maxVideoSeconds,
      },
      apiKey: flags.apiKey ?? (process.env.VIDEO_RNN_API_KEY || undefined),
      maxBodyMB: flags.maxBodyMb,
      maxFiles: flags.maxFiles,
      allowPaths: flags.allowPaths,
      tempDir: flags.tempDir,
      precision: precisionInUse(model.device, flags.precision),
    });
    const address = await app.listen({ port: flags.port, host: flags.host });
    app.log.info({ address, model: modelFile, device: model.device, classes: model.classes.length }, 'ready');
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals): void => {
        if (stopping) {
          app.log.warn({ signal }, 'second signal: exiting without draining');
          process.exit(exitCodes.interrupted);
        }
        app.log.info({ signal, drainSeconds: flags.drainSeconds }, 'stopping: no new connections, draining requests in flight');
        const deadline = setTimeout(() => {
          app.log.error({ drainSeconds: flags.drainSeconds }, 'requests still in flight after --drain-seconds: exiting');
          process.exit(exitCodes.failure);
        }, flags.drainSeconds * 1000);
        deadline.unref();
        stopping = app.close().then(() => {
          clearTimeout(deadline);
          app.log.info('stopped');
          resolve();
        });
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
  } finally {
    if (!stopping) await app.close();
    model.dispose();
  }
}
