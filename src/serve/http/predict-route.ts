// POST /v1/predict: a raw video body, multipart files, or (with --allow-paths) JSON paths, in; one
// prediction per video, in request order, out.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { MultipartFile } from '@fastify/multipart';
import type { Readable } from 'node:stream';
import { VideoRNNError, invalidArgument } from '../../errors';
import type { PredictionService } from '../service';
import { HttpError } from './errors';
import type { AllowedPaths } from './paths';
import { ByteBudget, UploadFolder, formatMegabytes } from './uploads';

export interface PredictRouteSettings {
  service: PredictionService;
  maxBodyBytes: number;
  /** The only body Fastify parses (JSON paths) is held to this. */
  maxJsonBytes: number;
  maxFiles: number;
  tempDir: string;
  allowed: AllowedPaths | undefined;
  maxUploads: number;
  requestTimeoutMs: number;
  /** Told of each upload refused by admission. */
  onRefused: () => void;
}

interface Input {
  path: string;
  /** What messages call it: the upload's file name, "body", or the requested path. */
  name: string;
}

type BodyKind = 'raw' | 'multipart' | 'json';

function bodyKind(request: FastifyRequest, allowed: AllowedPaths | undefined): BodyKind {
  const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'application/octet-stream' || type.startsWith('video/')) return 'raw';
  if (type === 'multipart/form-data') return 'multipart';
  if (type === 'application/json' && allowed) return 'json';
  const accepted = `video/*, application/octet-stream or multipart/form-data${allowed ? ' or application/json' : ''}`;
  throw new HttpError('E_UNSUPPORTED_MEDIA_TYPE', `the body must be ${accepted}${type ? `, not ${type}` : ''}`);
}

function topOf(query: unknown, classes: number): number {
  const raw = (query as Record<string, unknown> | undefined)?.top;
  if (raw === undefined) return Math.min(5, classes);
  if (typeof raw !== 'string' || !/^\d{1,6}$/.test(raw) || Number(raw) < 1) throw invalidArgument('top', 'a positive integer', raw);
  return Math.min(Number(raw), classes);
}

/** Messages about an upload name it as the client did, not by the private file it was stored in. */
function renamed(error: unknown, inputs: Input[]): unknown {
  if (!(error instanceof VideoRNNError)) return error;
  let message = error.message;
  for (const input of inputs) message = message.split(input.path).join(input.name);
  return message === error.message ? error : new VideoRNNError(error.code, message, { cause: error.cause });
}

async function multipartInputs(request: FastifyRequest, folder: UploadFolder, budget: ByteBudget, maxFiles: number,
  inputs: Input[], signal: AbortSignal): Promise<void> {
  const limits = { fileSize: budget.limit, files: maxFiles, fields: 32, fieldSize: 4096, parts: maxFiles + 32 };
  for await (const part of request.parts({ limits })) {
    if (part.type !== 'file') continue;
    const file = part as MultipartFile;
    const stored = await folder.save(file.file, budget, signal);
    if (file.file.truncated) throw new HttpError('E_PAYLOAD_TOO_LARGE', `${file.filename} is larger than ${formatMegabytes(budget.limit)}`);
    inputs.push({ path: stored, name: file.filename || file.fieldname });
  }
}

async function jsonInputs(body: unknown, allowed: AllowedPaths, maxFiles: number, inputs: Input[]): Promise<void> {
  const record = (typeof body === 'object' && body !== null ? body : {}) as { paths?: unknown; path?: unknown };
  const paths = record.paths ?? (record.path === undefined ? undefined : [record.path]);
  if (!Array.isArray(paths) || paths.length === 0 || paths.length > maxFiles) {
    throw invalidArgument('body', `{ "paths": [1 to ${maxFiles} paths] } or { "path": "..." }`, body);
  }
  for (const [index, requested] of paths.entries()) {
    inputs.push({ path: await allowed.resolve(requested, `paths[${index}]`), name: `paths[${index}]` });
  }
}

/** Rejects with the signal's reason once it fires. */
function whenAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

export function registerPredictRoute(app: FastifyInstance, settings: PredictRouteSettings): void {
  const { service, maxBodyBytes, maxFiles, allowed, maxUploads, requestTimeoutMs } = settings;
  // Requests admitted to store an upload and not yet done storing it.
  let receiving = 0;

  /** Admission before storage: an upload that could not be queued once stored is refused unread. */
  const admit = (): void => {
    const { queued } = service.stats;
    if (!service.accepting || receiving >= maxUploads || queued + receiving >= service.limits.maxQueue) {
      settings.onRefused();
      throw new VideoRNNError('E_OVERLOADED', `the server holds ${queued} queued clips and ${receiving} uploads in progress `
        + `(at most ${service.limits.maxQueue} and ${maxUploads}); retry later`);
    }
  };

  app.post('/v1/predict', {
    bodyLimit: settings.maxJsonBytes,
    // Runs before any body parser: a type the route refuses is never read.
    onRequest: async (request) => { bodyKind(request, allowed); },
  }, async (request: FastifyRequest, reply: FastifyReply) => {
    const topK = topOf(request.query, service.model.classes.length);
    const kind = bodyKind(request, allowed);
    const declared = Number(request.headers['content-length']);
    if (kind !== 'json' && declared > maxBodyBytes) {
      throw new HttpError('E_PAYLOAD_TOO_LARGE', `the request body is larger than ${formatMegabytes(maxBodyBytes)} (--max-body-mb)`);
    }
    if (kind !== 'json') admit();
    // A client that goes away frees its place in the queue (and stops its decode).
    const controller = new AbortController();
    const onClose = (): void => {
      if (!reply.raw.writableFinished) controller.abort(new Error('the client closed the connection'));
    };
    reply.raw.once('close', onClose);
    const inputs: Input[] = [];
    let folder: UploadFolder | undefined;
    try {
      if (kind === 'json') {
        await jsonInputs(request.body, allowed!, maxFiles, inputs);
      } else {
        receiving += 1;
        const clock = new AbortController();
        const timer = setTimeout(() => clock.abort(new HttpError('E_REQUEST_TIMEOUT',
          `the request body did not arrive within ${requestTimeoutMs} ms`)), Math.max(0, requestTimeoutMs - reply.elapsedTime));
        try {
          folder = await UploadFolder.create(settings.tempDir);
          const budget = new ByteBudget(maxBodyBytes);
          const storing = kind === 'raw'
            ? folder.save(request.body as Readable, budget, clock.signal).then((path) => { inputs.push({ path, name: 'body' }); })
            : multipartInputs(request, folder, budget, maxFiles, inputs, clock.signal);
          // A multipart body that stalls between parts is not inside a save: the race ends the wait.
          storing.catch(() => undefined);
          await Promise.race([storing, whenAborted(clock.signal)]);
        } finally {
          clearTimeout(timer);
          receiving -= 1;
        }
      }
      if (inputs.length === 0) throw invalidArgument('body', 'a video', 'an empty body');
      const predictions = await service.predict(inputs.map((input) => input.path), { topK, signal: controller.signal });
      return { predictions };
    } catch (error) {
      throw renamed(error, inputs);
    } finally {
      reply.raw.off('close', onClose);
      await folder?.remove();
    }
  });
}
