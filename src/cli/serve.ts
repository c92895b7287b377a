// `video-rnn serve <model>`: the Fastify plugin in a server of its own, with pino JSON logs (one
// request id per request) and a graceful stop: on SIGTERM or SIGINT it stops listening, lets the
// requests in flight finish within --drain-seconds, and exits 0. It refuses to listen beyond
// loopback without an API key unless --insecure-no-auth says that is meant.
import net from 'node:net';
import os from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { VideoRNN } from '../model';
import type { Device, Precision } from '../options';
import * as parse from './arguments';
import { addBackboneOption, addDeviceOption, addPrecisionOption, precisionInUse } from './common';
import { exitCodes } from './errors';
import { videoLimits } from '../video/limits';

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
  maxUploads?: number;
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  idleTimeoutMs?: number;
  keepAliveTimeoutMs: number;
  insecureNoAuth?: boolean;
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
    .option('--decode-concurrency <n>', 'ffmpeg processes at once, each decoding one or more videos (default: the number of cores)', parse.positiveInteger)
    .option('--max-video-seconds <s>', 'longer videos get 422', parse.positiveNumber, 600)
    .option('--max-body-mb <mb>', 'largest request body; larger ones get 413', parse.positiveNumber, 100)
    .option('--max-files <n>', 'most videos in one request', parse.integerBetween(1, 1024), 16)
    .option('--allow-paths <dir>', 'accept JSON bodies naming video files, read only inside DIR (after symlinks)')
    .option('--api-key <key>', 'require this key (Authorization: Bearer KEY or X-API-Key); or set VIDEO_RNN_API_KEY')
    .option('--temp-dir <dir>', 'where uploads are kept while they are decoded (default: the system temp folder)')
    .option('--max-uploads <n>', 'requests storing an upload at once; more get 503 before their body is read (default: --max-queue)',
      parse.positiveInteger)
    .option('--request-timeout-ms <ms>', 'a request (headers and body) must arrive within this, else 408', parse.positiveInteger, 120_000)
    .option('--headers-timeout-ms <ms>', 'request headers must arrive within this, else 408', parse.positiveInteger, 10_000)
    .option('--idle-timeout-ms <ms>', 'a connection with no traffic either way is closed after this (default: --timeout-ms + 10000, at least 60000)',
      parse.positiveInteger)
    .option('--keep-alive-timeout-ms <ms>', 'an idle keep-alive connection is closed after this', parse.positiveInteger, 5_000)
    .option('--insecure-no-auth', 'listen on a non-loopback address without an API key (anyone who reaches it may use it)')
    .option('--drain-seconds <s>', 'on SIGTERM/SIGINT, how long requests in flight may take to finish', parse.positiveNumber, 30)
    .addOption(new Option('--log-level <level>', 'pino log level').choices(logLevels).default('info'));
  addDeviceOption(command);
  addBackboneOption(command);
  addPrecisionOption(command);
  command.action(async (modelFile: string, flags: ServeFlags) => serve(modelFile, flags));
}

const loopback = new net.BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');
loopback.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const family = net.isIP(host);
  return family !== 0 && loopback.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

async function serve(modelFile: string, flags: ServeFlags): Promise<void> {
  const apiKey = flags.apiKey ?? (process.env.VIDEO_RNN_API_KEY || undefined);
  if (!isLoopback(flags.host) && apiKey === undefined && !flags.insecureNoAuth) {
    throw new InvalidArgumentError(`--host ${flags.host} is reachable from other machines and no API key is set: `
      + 'give --api-key (or VIDEO_RNN_API_KEY), or --insecure-no-auth to serve anyone who can connect');
  }
  const idleTimeoutMs = flags.idleTimeoutMs ?? Math.max(60_000, flags.timeoutMs + 10_000);
  // Loaded here, not at the top, so the other commands do not pay for the HTTP stack.
  const [{ default: Fastify }, { videoRNNPlugin, videoRNNRequestId }, { removeLiveUploadsSync, checkTempDir }] = await Promise.all([
    import('fastify'), import('../fastify'), import('../serve/http/uploads')]);
  // Before the model's seconds of loading: a wrong --temp-dir is known at once.
  await checkTempDir(flags.tempDir ?? os.tmpdir());
  // Every decode then checks the decoded timestamps too, and refuses a video that states no duration.
  videoLimits({ maxVideoSeconds: flags.maxVideoSeconds });
  const model = await VideoRNN.load(modelFile, { device: flags.device, precision: flags.precision, threads: flags.threads,
    backboneWeights: flags.backbone });
  const app = Fastify({
    logger: { level: flags.logLevel },
    genReqId: videoRNNRequestId,
    requestIdHeader: false,
    // The plugin checks the size of video bodies itself, as they stream to disk.
    bodyLimit: Math.ceil(flags.maxBodyMb * 2 ** 20),
    requestTimeout: flags.requestTimeoutMs,
    connectionTimeout: idleTimeoutMs,
    keepAliveTimeout: flags.keepAliveTimeoutMs,
    // Node enforces the request and headers timeouts on this period (30 s by default).
    http: { headersTimeout: Math.min(flags.headersTimeoutMs, flags.requestTimeoutMs), connectionsCheckingInterval: 1000 },
  });
  if (!isLoopback(flags.host) && apiKey === undefined) {
    app.log.warn({ host: flags.host }, '--insecure-no-auth: serving without an API key on an address other machines can reach');
  }
  const exitNow = (code: number): never => {
    const removed = removeLiveUploadsSync();
    if (removed > 0) app.log.warn({ removed }, 'removed the uploads of requests cut short');
    process.exit(code);
  };
  app.addHook('onSend', async (request, reply) => { reply.header('x-request-id', request.id); });
  let stopping: Promise<void> | undefined;
  try {
    await app.register(videoRNNPlugin, {
      model,
      serviceOptions: {
        maxBatchClips: flags.maxBatchClips, maxDelayMs: flags.maxDelayMs, maxQueue: flags.maxQueue, timeoutMs: flags.timeoutMs,
        decodeConcurrency: flags.decodeConcurrency, maxVideoSeconds: flags.maxVideoSeconds,
      },
      apiKey,
      maxBodyMB: flags.maxBodyMb,
      maxFiles: flags.maxFiles,
      allowPaths: flags.allowPaths,
      tempDir: flags.tempDir,
      maxUploads: flags.maxUploads,
      requestTimeoutMs: flags.requestTimeoutMs,
      precision: precisionInUse(model.device, flags.precision),
    });
    const address = await app.listen({ port: flags.port, host: flags.host });
    app.log.info({ address, model: modelFile, device: model.device, classes: model.classes.length,
      timeouts: { requestMs: flags.requestTimeoutMs, headersMs: flags.headersTimeoutMs, idleMs: idleTimeoutMs,
        keepAliveMs: flags.keepAliveTimeoutMs } }, 'ready');
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals): void => {
        if (stopping) {
          app.log.warn({ signal }, 'second signal: exiting without draining');
          exitNow(exitCodes.interrupted);
        }
        app.log.info({ signal, drainSeconds: flags.drainSeconds }, 'stopping: no new connections, draining requests in flight');
        const deadline = setTimeout(() => {
          app.log.error({ drainSeconds: flags.drainSeconds }, 'requests still in flight after --drain-seconds: exiting');
          exitNow(exitCodes.failure);
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
