/**
 * Kubernetes API failures, normalized: the SDK's ApiException and the light reader's answers both carry
 * the HTTP status in `code` and the apiserver's Status in `body`. No SDK import here, so code that only
 * needs to read an error (the CLI's quick commands) does not load @kubernetes/client-node.
 */

/** The HTTP status of a Kubernetes API error, or undefined for other errors. */
export function statusCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The apiserver's own message from an API error (the Status object's `message`). */
export function statusMessage(error: unknown): string {
  const answer = error as { code?: unknown; body?: unknown } | null;
  if (typeof answer?.code === 'number' && 'body' in answer) {
    const parsed = typeof answer.body === 'string' ? safeJson(answer.body) : answer.body;
    const message = (parsed as { message?: unknown } | undefined)?.message;
    if (typeof message === 'string') return message;
    return `HTTP ${answer.code}`;
  }
  return error instanceof Error ? error.message : String(error);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Node's codes for failing to reach a server at all: refused, reset, timed out, not resolved. */
const networkCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** A failure to reach the apiserver at all, as opposed to an answer or a configuration error. */
export function isUnreachable(error: unknown): boolean {
  if (statusCode(error) !== undefined) return false;
  for (
    let e = error as { code?: unknown; name?: unknown; cause?: unknown } | undefined, depth = 0;
    e && depth < 4;
    depth++
  ) {
    if (typeof e.code === 'string' && networkCodes.has(e.code)) return true;
    if (e.name === 'AbortError') return true;
    e = e.cause as typeof e;
  }
  return false;
}

export const isNotFound = (error: unknown) => statusCode(error) === 404;
export const isConflict = (error: unknown) => statusCode(error) === 409;
export const isForbidden = (error: unknown) => statusCode(error) === 403;
/** 422: the apiserver's validation (a CEL rule, a schema) refused the write. */
export const isInvalid = (error: unknown) => statusCode(error) === 422;
