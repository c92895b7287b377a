// One JSON error shape for every failure, { error: { code, message } }, and its HTTP status.
import { ErrorCode, VideoRNNError } from '../../errors';

/** Codes that exist only over HTTP, next to the library's own. */
export type HttpOnlyCode = 'E_UNAUTHORIZED' | 'E_FORBIDDEN_PATH' | 'E_PAYLOAD_TOO_LARGE' | 'E_UNSUPPORTED_MEDIA_TYPE' | 'E_INTERNAL';
export type HttpErrorCode = ErrorCode | HttpOnlyCode;

export class HttpError extends Error {
  constructor(readonly code: HttpOnlyCode, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

const statuses: Partial<Record<HttpErrorCode, number>> = {
  E_INVALID_ARGUMENT: 400,
  E_UNAUTHORIZED: 401,
  E_FORBIDDEN_PATH: 403,
  E_PAYLOAD_TOO_LARGE: 413,
  E_UNSUPPORTED_MEDIA_TYPE: 415,
  E_VIDEO_DECODE: 422,
  E_VIDEO_NOT_FOUND: 422,
  // The client has gone; nginx's 499 "client closed request" is what access logs then show.
  E_ABORTED: 499,
  E_OVERLOADED: 503,
  E_DISPOSED: 503,
  E_TIMEOUT: 504,
};

/** Fastify's and @fastify/multipart's own errors, by their code. */
const frameworkCodes: Record<string, HttpErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'E_PAYLOAD_TOO_LARGE',
  FST_REQ_FILE_TOO_LARGE: 'E_PAYLOAD_TOO_LARGE',
  FST_FILES_LIMIT: 'E_PAYLOAD_TOO_LARGE',
  FST_PARTS_LIMIT: 'E_PAYLOAD_TOO_LARGE',
  FST_FIELDS_LIMIT: 'E_PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'E_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'E_INVALID_ARGUMENT',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'E_INVALID_ARGUMENT',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'E_UNSUPPORTED_MEDIA_TYPE',
};

export interface HttpFailure {
  status: number;
  code: HttpErrorCode;
  message: string;
}

export function httpFailure(error: unknown): HttpFailure {
  if (error instanceof VideoRNNError || error instanceof HttpError) {
    return { status: statuses[error.code] ?? 500, code: error.code, message: error.message };
  }
  const raw = error as { code?: unknown; statusCode?: unknown; message?: unknown } | null;
  const message = typeof raw?.message === 'string' ? raw.message : String(error);
  const mapped = typeof raw?.code === 'string' ? frameworkCodes[raw.code] : undefined;
  if (mapped !== undefined) return { status: statuses[mapped] ?? 500, code: mapped, message };
  // Other client errors of the framework (a malformed JSON body, a bad header) are malformed requests.
  const status = typeof raw?.statusCode === 'number' ? raw.statusCode : 500;
  if (status >= 400 && status < 500) return { status: 400, code: 'E_INVALID_ARGUMENT', message };
  return { status: 500, code: 'E_INTERNAL', message: 'internal error' };
}

export function errorBody(failure: HttpFailure): { error: { code: string; message: string } } {
  return { error: { code: failure.code, message: failure.message } };
}
