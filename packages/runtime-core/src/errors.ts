// Typed errors shared by every berth client. Each carries the operation that failed and, when a daemon
// answered, its own message and status, so callers can branch on the class and still show the detail.

export type BerthErrorCode =
  | "NotFound"
  | "Conflict"
  | "Unauthorized"
  | "Unavailable"
  | "ApiVersion"
  | "DigestMismatch"
  | "Timeout"
  | "Aborted"
  | "Validation"
  | "Unsupported"
  | "Protocol"
  | "Daemon";

export interface BerthErrorDetails {
  /** The operation that failed, in the client's words: "containers.inspect", "Version". */
  operation?: string | undefined;
  /** HTTP status or gRPC status code name the daemon answered with. */
  status?: number | string | undefined;
  /** The daemon's own message, verbatim. */
  daemonMessage?: string | undefined;
  /** Which backend: "docker", "podman", "containerd", "cri". */
  backend?: string | undefined;
  cause?: unknown;
}

export abstract class BerthError extends Error {
  abstract readonly code: BerthErrorCode;
  readonly operation: string | undefined;
  readonly status: number | string | undefined;
  readonly daemonMessage: string | undefined;
  readonly backend: string | undefined;

  constructor(message: string, details: BerthErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.operation = details.operation;
    this.status = details.status;
    this.daemonMessage = details.daemonMessage;
    this.backend = details.backend;
  }
}

/** The container, image, network, namespace... does not exist. */
export class NotFoundError extends BerthError {
  readonly code = "NotFound";
}
/** The request conflicts with the current state (name in use, container running...). */
export class ConflictError extends BerthError {
  readonly code = "Conflict";
}
/** Credentials missing or refused by a daemon or registry. */
export class UnauthorizedError extends BerthError {
  readonly code = "Unauthorized";
}
/** The daemon cannot be reached: socket missing, connection refused or reset. */
export class UnavailableError extends BerthError {
  readonly code = "Unavailable";
}
/** The operation needs a newer API version than the daemon speaks, or the daemon's API is unsupported. */
export class ApiVersionError extends BerthError {
  readonly code = "ApiVersion";
  constructor(
    message: string,
    readonly required: string | undefined,
    readonly actual: string | undefined,
    details: BerthErrorDetails = {},
  ) {
    super(message, details);
  }
}
/** Content whose digest or size does not match what was expected. Nothing was committed. */
export class DigestMismatchError extends BerthError {
  readonly code = "DigestMismatch";
  constructor(
    message: string,
    readonly expected: string,
    readonly actual: string,
    details: BerthErrorDetails = {},
  ) {
    super(message, details);
  }
}
/** A deadline passed before the daemon answered. */
export class TimeoutError extends BerthError {
  readonly code = "Timeout";
}
/** The caller's AbortSignal fired. */
export class AbortedError extends BerthError {
  readonly code = "Aborted";
}
/** Bad input, refused before anything reached a daemon. */
export class ValidationError extends BerthError {
  readonly code = "Validation";
}
/** The backend cannot do what was asked (declared in its capabilities). */
export class UnsupportedError extends BerthError {
  readonly code = "Unsupported";
}
/** The daemon sent something that breaks its protocol (malformed frame, truncated body). */
export class ProtocolError extends BerthError {
  readonly code = "Protocol";
}
/** Any other error the daemon reported. */
export class DaemonError extends BerthError {
  readonly code = "Daemon";
}

export function isBerthError(err: unknown): err is BerthError {
  return err instanceof BerthError;
}
