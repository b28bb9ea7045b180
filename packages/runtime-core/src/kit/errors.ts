// The errors an adapter makes itself, stamped with its backend, so the same failure reads the same on
// every backend: "<operation>: <what>", with the operation and backend as fields.
import { AbortedError, type BerthError, type BerthErrorDetails, UnsupportedError } from "../errors.js";

/** A BerthError class whose constructor takes (message, details). */
export type ErrorClass<E extends BerthError> = new (message: string, details?: BerthErrorDetails) => E;

/** The details an adapter adds to an error besides the operation and backend it stamps. */
export type ExtraDetails = Omit<BerthErrorDetails, "operation" | "backend">;

/** An adapter's error factory; see {@link adapterErrors}. */
export interface AdapterErrors {
  /** The backend every error is stamped with. */
  readonly backend: string;
  /** Where a call's arguments go, for the ValidationError of a bad argument. */
  at(operation: string): { operation: string; backend: string };
  /** A `Class` error for `operation`: "operation: message". */
  error<E extends BerthError>(
    Class: ErrorClass<E>,
    operation: string,
    message: string,
    details?: ExtraDetails,
  ): E;
  /** The AbortedError of `operation`; its cause is `cause`, else the signal's reason. */
  aborted(operation: string, signal?: AbortSignal, cause?: unknown): AbortedError;
  /** Throws the AbortedError of `operation` when `signal` has fired. */
  throwIfAborted(operation: string, signal?: AbortSignal): void;
  /** The UnsupportedError of an operation the backend cannot do, saying why. */
  unsupported(operation: string, why: string): UnsupportedError;
}

/** The error factory of the adapter for `backend` ("docker", "podman", "containerd", "cri"). */
export function adapterErrors(backend: string): AdapterErrors {
  const error = <E extends BerthError>(
    Class: ErrorClass<E>,
    operation: string,
    message: string,
    details: ExtraDetails = {},
  ): E => new Class(`${operation}: ${message}`, { ...details, operation, backend });
  const aborted = (operation: string, signal?: AbortSignal, cause?: unknown) =>
    error(AbortedError, operation, "aborted", { cause: cause ?? signal?.reason });
  return {
    backend,
    at: (operation) => ({ operation, backend }),
    error,
    aborted,
    throwIfAborted(operation, signal) {
      if (signal?.aborted) throw aborted(operation, signal);
    },
    unsupported: (operation, why) => error(UnsupportedError, operation, why),
  };
}
