// Typed errors shared by every berth client. Each carries the operation that failed and, when a daemon
// answered, its own message and status, so callers can branch on the class and still show the detail.

/** The `code` of each BerthError class, to branch on without `instanceof`. */
export type BerthErrorCode =
  | "NotFound"
  | "Conflict"
  | "Unauthorized"
  | "Unavailable"
  | "ApiVersion"
  | "DigestMismatch"
  | "ContainerExited"
  | "Timeout"
  | "Aborted"
  | "Validation"
  | "Unsupported"
  | "Protocol"
  | "Daemon";

/** What a BerthError carries besides its message; every field is optional. */
export interface BerthErrorDetails {
  /** The operation that failed, in the client's words: "containers.inspect", "Version". */
  operation?: string | undefined;
  /** HTTP status or gRPC status code name the daemon answered with. */
  status?: number | string | undefined;
  /** The daemon's own message, verbatim. */
  daemonMessage?: string | undefined;
  /** Which backend: "docker", "podman", "containerd", "cri". */
  backend?: string | undefined;
  /** The underlying error (a socket error, a gRPC status, a daemon's answer), kept as `Error.cause`. */
  cause?: unknown;
}

// An app can end up with two copies of this package (two versions in its node_modules), and an error made
// by one copy must still pass `instanceof` against the other's classes. So every error carries a brand
// under a registry-wide symbol: the kinds of its class and of each berth class above it (a NoRuntimeError
// is ["BerthError", "Unavailable", "NoRuntime"]), and `instanceof` accepts a branded value whose kinds
// include the class's own kind. Subclass checks stay exact: a ConflictError is not a NotFoundError.
const BRAND = Symbol.for("berth.error");

function kindsOf(ctor: unknown): readonly string[] {
  const kinds: string[] = [];
  for (let c = ctor; typeof c === "function"; c = Object.getPrototypeOf(c)) {
    if (Object.hasOwn(c, "kind")) kinds.unshift(String((c as { kind?: unknown }).kind));
  }
  return Object.freeze(kinds);
}

function brandOf(value: unknown): readonly unknown[] | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const brand = (value as { [BRAND]?: unknown })[BRAND];
  return Array.isArray(brand) ? brand : undefined;
}

function isInstance(ctor: object, value: unknown): boolean {
  if (Function.prototype[Symbol.hasInstance].call(ctor, value)) return true;
  // A class without a kind of its own (an app's subclass) is matched by its prototype chain only.
  if (!Object.hasOwn(ctor, "kind")) return false;
  return brandOf(value)?.includes((ctor as { kind?: unknown }).kind) ?? false;
}

/**
 * The base class of every error berth throws on purpose. Branch on the subclass (`instanceof` works
 * across two copies of the package) or on `code`; `operation`, `status` and `daemonMessage` say what failed
 * and what the daemon said.
 */
export abstract class BerthError extends Error {
  /** Which berth class this is, for `instanceof` across copies of the package; each class sets its own. */
  protected static readonly kind: string = "BerthError";

  /** `value` is an error of this class (or a subclass), made by this copy of the package or another. */
  // Not a type predicate: TypeScript then narrows `x instanceof C` to C's instances, as for any class.
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class right of instanceof, often a subclass
    return isInstance(this, value);
  }

  /** Which kind of failure this is: the class's name without `Error`. */
  abstract readonly code: BerthErrorCode;
  /** The operation that failed, in the client's words: "containers.inspect", "Version". */
  readonly operation: string | undefined;
  /** HTTP status or gRPC status code name the daemon answered with, when one answered. */
  readonly status: number | string | undefined;
  /** The daemon's own message, verbatim, when one answered. */
  readonly daemonMessage: string | undefined;
  /** Which backend: "docker", "podman", "containerd", "cri". */
  readonly backend: string | undefined;

  /**
   * @param message - What failed, for people.
   * @param details - The operation, the daemon's status and message, the backend and the cause.
   */
  constructor(message: string, details: BerthErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.operation = details.operation;
    this.status = details.status;
    this.daemonMessage = details.daemonMessage;
    this.backend = details.backend;
    Object.defineProperty(this, BRAND, { value: kindsOf(new.target) });
  }
}

/** The container, image, network, namespace... does not exist. */
export class NotFoundError extends BerthError {
  protected static override readonly kind: string = "NotFound";
  /** Always `"NotFound"`. */
  readonly code = "NotFound";
}
/** The request conflicts with the current state (name in use, container running...). */
export class ConflictError extends BerthError {
  protected static override readonly kind: string = "Conflict";
  /** Always `"Conflict"`. */
  readonly code = "Conflict";
}
/** Credentials missing or refused by a daemon or registry. */
export class UnauthorizedError extends BerthError {
  protected static override readonly kind: string = "Unauthorized";
  /** Always `"Unauthorized"`. */
  readonly code = "Unauthorized";
}
/** The daemon cannot be reached: socket missing, connection refused or reset. */
export class UnavailableError extends BerthError {
  protected static override readonly kind: string = "Unavailable";
  /** Always `"Unavailable"`. */
  readonly code = "Unavailable";
}
/** The operation needs a newer API version than the daemon speaks, or the daemon's API is unsupported. */
export class ApiVersionError extends BerthError {
  protected static override readonly kind: string = "ApiVersion";
  /** Always `"ApiVersion"`. */
  readonly code = "ApiVersion";
  constructor(
    message: string,
    /** The API version the operation needs, when known. */
    readonly required: string | undefined,
    /** The API version the daemon speaks, when known. */
    readonly actual: string | undefined,
    details: BerthErrorDetails = {},
  ) {
    super(message, details);
  }
}
/** Content whose digest or size does not match what was expected. Nothing was committed. */
export class DigestMismatchError extends BerthError {
  protected static override readonly kind: string = "DigestMismatch";
  /** Always `"DigestMismatch"`. */
  readonly code = "DigestMismatch";
  constructor(
    message: string,
    /** The digest (or size) the content was expected to have. */
    readonly expected: string,
    /** The digest (or size) it had. */
    readonly actual: string,
    details: BerthErrorDetails = {},
  ) {
    super(message, details);
  }
}
/** The container exited while the caller waited for it to become ready (`waitFor`). */
export class ContainerExitedError extends BerthError {
  protected static override readonly kind: string = "ContainerExited";
  /** Always `"ContainerExited"`. */
  readonly code = "ContainerExited";
  constructor(
    message: string,
    /** The container's exit code. */
    readonly exitCode: number,
    /** Its last lines of output (stdout and stderr, in order; at most 20, each cut at 1,000 characters). */
    readonly lastLines: readonly string[],
    details: BerthErrorDetails = {},
  ) {
    super(message, details);
  }
}
/** A deadline passed before the daemon answered. */
export class TimeoutError extends BerthError {
  protected static override readonly kind: string = "Timeout";
  /** Always `"Timeout"`. */
  readonly code = "Timeout";
}
/** The caller's AbortSignal fired. */
export class AbortedError extends BerthError {
  protected static override readonly kind: string = "Aborted";
  /** Always `"Aborted"`. */
  readonly code = "Aborted";
}
/** Bad input, refused before anything reached a daemon. */
export class ValidationError extends BerthError {
  protected static override readonly kind: string = "Validation";
  /** Always `"Validation"`. */
  readonly code = "Validation";
}
/** The backend cannot do what was asked (declared in its capabilities). */
export class UnsupportedError extends BerthError {
  protected static override readonly kind: string = "Unsupported";
  /** Always `"Unsupported"`. */
  readonly code = "Unsupported";
}
/** The daemon sent something that breaks its protocol (malformed frame, truncated body). */
export class ProtocolError extends BerthError {
  protected static override readonly kind: string = "Protocol";
  /** Always `"Protocol"`. */
  readonly code = "Protocol";
}
/** Any other error the daemon reported. */
export class DaemonError extends BerthError {
  protected static override readonly kind: string = "Daemon";
  /** Always `"Daemon"`. */
  readonly code = "Daemon";
}

/** Any berth error, from this copy of the package or another. */
export function isBerthError(err: unknown): err is BerthError {
  return err instanceof BerthError;
}
