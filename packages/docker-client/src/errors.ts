// Daemon answers and transport failures mapped to runtime-core's typed errors.
import {
  AbortedError,
  BerthError,
  type BerthErrorDetails,
  ConflictError,
  DaemonError,
  DigestMismatchError,
  NotFoundError,
  ProtocolError,
  TimeoutError,
  UnauthorizedError,
  UnavailableError,
  ValidationError,
} from "@berth/runtime-core";
import { classifyDaemonMessage, digestMismatchIn } from "@berth/runtime-core/internal";
import { StatusError } from "./transport.js";

/** Daemons report registry failures as 500s (or inside 200 streams) with only a message to go by. */
export function errorFromMessage(message: string, details: BerthErrorDetails): BerthError {
  const text = `${details.operation}: ${message}`;
  // A layer, config or manifest that failed its digest check, in Docker's or Podman's words.
  const mismatch = digestMismatchIn(message);
  if (mismatch) return new DigestMismatchError(text, mismatch.expected, mismatch.actual, details);
  const kind = classifyDaemonMessage(message);
  if (kind === "Unauthorized") return new UnauthorizedError(text, details);
  if (kind === "Timeout") return new TimeoutError(text, details);
  if (kind === "NotFound") return new NotFoundError(text, details);
  return new DaemonError(text, details);
}

/** The typed error for a non-2xx answer; `body` is the daemon's JSON ({"message": ...}) or text. */
export function errorFromStatus(
  status: number,
  body: string,
  operation: string,
  backend: string,
): BerthError {
  let message = body.trim();
  try {
    const parsed = JSON.parse(body) as { message?: unknown; cause?: unknown };
    if (typeof parsed.message === "string") message = parsed.message;
  } catch {
    // not JSON: keep the text
  }
  const details = { operation, status, daemonMessage: message, backend };
  const text = `${operation}: ${message || `HTTP ${status}`}`;
  // Not an answer to the call: a redirect (followed, it would leave the endpoint the call named), or a
  // status the API does not define for it. The daemon's text is no reason to believe otherwise.
  if (status < 400) {
    const what =
      status >= 300 && status < 400
        ? "a redirect, which berth does not follow"
        : "not an answer to this call";
    return new ProtocolError(`${operation}: the daemon answered HTTP ${status}: ${what}`, details);
  }
  switch (status) {
    case 400:
      return new ValidationError(text, details);
    case 401:
    case 403:
      return new UnauthorizedError(text, details);
    case 404:
      return new NotFoundError(text, details);
    case 409:
      return new ConflictError(text, details);
    default:
      return message ? errorFromMessage(message, details) : new DaemonError(text, details);
  }
}

const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ENOENT",
  "EACCES",
  "EPERM",
  "ECONNRESET",
  "EPIPE",
  "ENOTSOCK",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ENOTFOUND",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_DESTROYED",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/**
 * The typed error for whatever an exchange threw: a status that does not answer the call (by
 * errorFromStatus), or a failure below HTTP: socket missing, refused, reset, timed out, aborted.
 */
export function errorFromTransport(
  err: unknown,
  operation: string,
  endpoint: string,
  backend: string,
  signal?: AbortSignal,
): BerthError {
  if (err instanceof BerthError) return err;
  if (err instanceof StatusError) {
    return errorFromStatus(err.status, err.body.toString("utf8"), operation, backend);
  }
  if (signal?.aborted) {
    return new AbortedError(`${operation}: aborted`, { operation, backend, cause: signal.reason });
  }
  const e = err as { code?: string; message?: string; name?: string };
  const code = e.code ?? "";
  // undici refused a value of the request itself (a header with CR/LF in it): nothing was sent.
  if (code === "UND_ERR_INVALID_ARG") {
    return new ValidationError(`${operation}: ${e.message}`, { operation, backend, cause: err });
  }
  if (code === "BERTH_TOO_LARGE") {
    return new ProtocolError(`${operation}: ${e.message}`, { operation, backend, cause: err });
  }
  if (code === "BERTH_DEADLINE" || code === "BERTH_IDLE" || code === "UND_ERR_BODY_TIMEOUT") {
    const what = code === "UND_ERR_BODY_TIMEOUT" ? "sent nothing for the stream's idleTimeout" : e.message;
    return new TimeoutError(`${operation}: ${endpoint} ${what}`, { operation, backend, cause: err });
  }
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT" || e.name === "TimeoutError") {
    return new TimeoutError(`${operation}: ${endpoint} did not answer in time`, {
      operation,
      backend,
      cause: err,
    });
  }
  if (code === "UND_ERR_ABORTED" || e.name === "AbortError") {
    return new AbortedError(`${operation}: aborted`, { operation, backend, cause: err });
  }
  // undici's HTTP parser (llhttp) refused the answer: a bad chunk-size line, a malformed header. The
  // daemon (or something in between) broke HTTP/1.1; the connection is unusable, not the daemon gone.
  // (undici 7 sets no HPE_ code on these: it looks the number up in a name→number table.)
  if (
    e.name === "HTTPParserError" ||
    code.startsWith("HPE_") ||
    code === "UND_ERR_RES_CONTENT_LENGTH_MISMATCH"
  ) {
    return new ProtocolError(`${operation}: ${e.message || code}`, {
      operation,
      backend,
      ...(code ? { status: code } : {}),
      cause: err,
    });
  }
  if (UNAVAILABLE_CODES.has(code)) {
    const why =
      code === "ENOENT"
        ? "socket does not exist"
        : code === "EACCES" || code === "EPERM"
          ? "permission denied"
          : code === "ECONNREFUSED"
            ? "connection refused"
            : (e.message ?? code);
    return new UnavailableError(`${operation}: cannot reach ${endpoint}: ${why}`, {
      operation,
      backend,
      status: code,
      cause: err,
    });
  }
  return new DaemonError(`${operation}: ${e.message ?? String(err)}`, { operation, backend, cause: err });
}
