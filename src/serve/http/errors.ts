// One JSON error shape for every failure, { error: { code, message, requestId } }, and its HTTP status.
// A 500 says only what kind of failure it was: LibTorch's message or ffmpeg's path go to the log.
import { ErrorCode, VideoRNNError } from '../../errors';

/** Codes that exist only over HTTP, next to the library's own. */
export type HttpOnlyCode = 'E_UNAUTHORIZED' | 'E_FORBIDDEN_PATH' | 'E_PAYLOAD_TOO_LARGE' | 'E_UNSUPPORTED_MEDIA_TYPE' | 'E_REQUEST_TIMEOUT' | 'E_INTERNAL';
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
  E_REQUEST_TIMEOUT: 408,
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

/** What a 500 of each code tells the client; the error itself is logged. */
const genericMessages: Partial<Record<HttpErrorCode, string>> = {
  E_NATIVE: 'the model failed on this request',
  E_NO_FFMPEG: 'the server cannot decode video',
  E_IO: 'the server could not read or write a file',
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

/** The failure as a client sees it: a 500 keeps its code and gets a generic message. */
export function publicFailure(failure: HttpFailure): HttpFailure {
  if (failure.status < 500 || failure.status === 503 || failure.status === 504) return failure;
  return { ...failure, message: genericMessages[failure.code] ?? 'internal error' };
}

export function errorBody(failure: HttpFailure, requestId: string): { error: { code: string; message: string; requestId: string } } {
  const shown = publicFailure(failure);
  return { error: { code: shown.code, message: shown.message, requestId } };
}
