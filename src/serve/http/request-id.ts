// Request ids end up in logs and response headers, so a client's X-Request-Id is taken only when it
// is short and plain; anything else is replaced by a random UUID (the header cannot smuggle log lines,
// control characters or megabytes into the log).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const acceptedId = /^[A-Za-z0-9._:-]{1,128}$/;

/** The client's id when it is 1 to 128 characters of A-Z a-z 0-9 . _ : -, else a new UUID. */
export function requestIdOf(header: unknown): string {
  return typeof header === 'string' && acceptedId.test(header) ? header : randomUUID();
}

/**
 * For `Fastify({ genReqId: videoRNNRequestId, requestIdHeader: false })`: the request's
 * X-Request-Id when it is acceptable, else a new UUID.
 */
export function videoRNNRequestId(request: IncomingMessage): string {
  return requestIdOf(request.headers['x-request-id']);
}
