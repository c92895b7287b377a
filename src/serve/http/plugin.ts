// The Fastify plugin: routes, API key, errors, metrics and shutdown around one PredictionService.
// It is encapsulated: its content-type parsers, hooks and error handler touch only its own routes.
import { createHash, timingSafeEqual } from 'node:crypto';
import os from 'node:os';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifyContentTypeParser } from 'fastify';
import multipart from '@fastify/multipart';
import { Registry } from 'prom-client';
import { checkInteger, checkNumber, checkString, invalidArgument } from '../../errors';
import type { VideoRNN } from '../../model';
import { resolveBackend } from '../../options';
import type { PredictionServiceOptions } from '../options';
import { PredictionService } from '../service';
import { HttpError, errorBody, httpFailure, publicFailure } from './errors';
import { createMetrics } from './metrics';
import { AllowedPaths } from './paths';
import { registerPredictRoute } from './predict-route';
import { prepareTempDir } from './uploads';

export interface VideoRNNPluginOptions {
  /** A loaded model: the plugin makes a PredictionService for it and closes that when the app closes. */
  model?: VideoRNN;
  /** Or a service of your own (you close it); `serviceOptions` are then ignored. */
  service?: PredictionService;
  serviceOptions?: PredictionServiceOptions;
  /** Requests (other than /healthz and /readyz) must carry it as `Authorization: Bearer KEY` or `X-API-Key`. */
  apiKey?: string;
  /** Largest request body, all files together (default 100). */
  maxBodyMB?: number;
  /** Most videos in one request (default 16). */
  maxFiles?: number;
  /** Paths in a JSON body are read only when they resolve inside this folder; without it JSON bodies are refused. */
  allowPaths?: string;
  /** Where uploads are stored while they are decoded (default: the system temp folder); checked, and swept of dead servers' uploads, at start. */
  tempDir?: string;
  /** Requests storing an upload at once; more get 503 before their body is read (default: the service's maxQueue). */
  maxUploads?: number;
  /** A request's body must have arrived within this many milliseconds of the request, else 408 (default 120000). */
  requestTimeoutMs?: number;
  /** What GET /v1/model reports as precision (default: what 'auto' picks for the model's device). */
  precision?: string;
  /** Registry for /metrics (default: a new one per mount). */
  registry?: Registry;
  /** Also export Node process metrics (CPU, memory, event loop); default true. */
  processMetrics?: boolean;
}

function keyMatcher(apiKey: string | undefined): ((request: FastifyRequest) => boolean) | undefined {
  if (apiKey === undefined) return undefined;
  // Hashing both sides gives equal lengths, so timingSafeEqual compares without leaking the key's length.
  const expected = createHash('sha256').update(checkString('apiKey', apiKey)).digest();
  return (request) => {
    const header = request.headers.authorization;
    const bearer = typeof header === 'string' && /^Bearer /i.test(header) ? header.slice(7) : undefined;
    const given = bearer ?? request.headers['x-api-key'];
    if (typeof given !== 'string') return false;
    return timingSafeEqual(createHash('sha256').update(given).digest(), expected);
  };
}

function retryAfterSeconds(service: PredictionService): number {
  const { queued } = service.stats;
  const { maxBatchClips, maxDelayMs } = service.limits;
  const waitMs = service.meanBatchMs * (Math.ceil(queued / maxBatchClips) + 1) + maxDelayMs;
  return Math.max(1, Math.ceil(waitMs / 1000));
}

export async function videoRNNPlugin(app: FastifyInstance, options: VideoRNNPluginOptions): Promise<void> {
  if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
  if (options.service !== undefined && !(options.service instanceof PredictionService)) {
    throw invalidArgument('service', 'a PredictionService', options.service);
  }
  const service = options.service ?? new PredictionService(options.model as VideoRNN, options.serviceOptions);
  const model = service.model;
  const maxBodyBytes = Math.floor(checkNumber('maxBodyMB', options.maxBodyMB ?? 100, 0.001, 1024 * 1024) * 2 ** 20);
  const maxFiles = checkInteger('maxFiles', options.maxFiles ?? 16, 1, 1024);
  const allowed = options.allowPaths === undefined ? undefined : await AllowedPaths.open(checkString('allowPaths', options.allowPaths));
  const tempDir = options.tempDir === undefined ? os.tmpdir() : checkString('tempDir', options.tempDir);
  const maxUploads = checkInteger('maxUploads', options.maxUploads ?? service.limits.maxQueue, 1, 1_000_000);
  const requestTimeoutMs = checkInteger('requestTimeoutMs', options.requestTimeoutMs ?? 120_000, 1, 2_147_483_647);
  const { swept } = await prepareTempDir(tempDir);
  if (swept.length > 0) app.log.warn({ swept }, 'removed upload folders left by servers that no longer run');
  const precision = options.precision ?? resolveBackend(model.device, 'auto', { available: true, devices: Infinity }).precision;
  const metrics = createMetrics(service, model, options.registry ?? new Registry(), options.processMetrics ?? true);
  const authorized = keyMatcher(options.apiKey);

  // A host app that already registered @fastify/multipart keeps its registration (a second one would
  // fail on its decorators); the route passes its own limits per request either way.
  if (!app.hasRequestDecorator('parts')) await app.register(multipart);
  // The stream itself is the body; the route stores it, counting bytes against --max-body-mb.
  const passThrough: FastifyContentTypeParser = (_request, payload, done) => done(null, payload);
  app.addContentTypeParser('application/octet-stream', passThrough);
  app.addContentTypeParser(/^video\/[\w.+-]+$/i, passThrough);

  app.setErrorHandler((error, request, reply) => {
    const failure = httpFailure(error);
    if (publicFailure(failure) !== failure) request.log.error({ err: error }, 'request failed');
    if (failure.status === 503) reply.header('retry-after', String(retryAfterSeconds(service)));
    if (failure.status === 401) reply.header('www-authenticate', 'Bearer');
    // A refusal before the body was read (415, 503, 413) or a trickled body (408): the rest of it is
    // not worth reading, so the connection ends with the response.
    if (!request.raw.complete) reply.header('connection', 'close');
    return reply.code(failure.status).send(errorBody(failure, request.id));
  });
  app.addHook('onRequest', async (request) => {
    if (authorized && request.routeOptions.config.public !== true && !authorized(request)) {
      throw new HttpError('E_UNAUTHORIZED', 'a valid API key is required (Authorization: Bearer KEY or X-API-Key)');
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.observeRequest(request.routeOptions.url ?? 'unmatched', request.method, reply.statusCode, reply.elapsedTime / 1000);
  });
  // Once the app is closing, a keep-alive connection would hold server.close() open until it idles
  // out (72 s in Fastify); answering with Connection: close ends each one with its last response.
  let closing = false;
  app.addHook('preClose', async () => { closing = true; });
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close');
  });
  app.addHook('onClose', async () => {
    metrics.detach();
    if (options.service === undefined) await service.close();
  });

  app.get('/healthz', { config: { public: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { config: { public: true } }, async (_request, reply: FastifyReply) => {
    const { queued } = service.stats;
    const ready = service.accepting;
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'busy', queued, maxQueue: service.limits.maxQueue });
  });
  app.get('/v1/model', async () => ({ classes: model.classes, config: model.config, device: model.device, precision, backbone: model.backbone }));
  app.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  // JSON bodies name files and nothing else: at most maxFiles paths of PATH_MAX (4096) bytes, plus
  // room for the brackets. Video bodies are not parsed by Fastify: the route counts their bytes.
  const maxJsonBytes = 1024 + maxFiles * 4096;
  registerPredictRoute(app, { service, maxJsonBytes, maxBodyBytes, maxFiles, tempDir, allowed, maxUploads, requestTimeoutMs,
    onRefused: () => metrics.refuseUpload() });
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Routes that answer without an API key. */
    public?: boolean;
  }
}
