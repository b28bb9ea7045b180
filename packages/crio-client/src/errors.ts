// CRI runtimes report some failures with a generic status and the real reason in the text (containerd
// answers a registry's 401 as UNKNOWN "...: 401 Unauthorized"). Refine those into berth's classes.
import {
  type BerthError,
  type BerthErrorDetails,
  classifyDaemonMessage,
  DaemonError,
  isBerthError,
  NotFoundError,
  TimeoutError,
  UnauthorizedError,
} from "@berth/runtime-core";

function details(err: BerthError): BerthErrorDetails {
  return {
    operation: err.operation,
    status: err.status,
    daemonMessage: err.daemonMessage,
    backend: err.backend,
    cause: err,
  };
}

/** Refine an error from a CRI call; anything already specific passes through. */
export function refineCriError(err: unknown): unknown {
  if (!isBerthError(err) || !(err instanceof DaemonError)) return err;
  const kind = classifyDaemonMessage(err.daemonMessage ?? err.message);
  if (kind === "Unauthorized") return new UnauthorizedError(err.message, details(err));
  if (kind === "Timeout") return new TimeoutError(err.message, details(err));
  if (kind === "NotFound") return new NotFoundError(err.message, details(err));
  return err;
}

/** Await a CRI call and refine its error. */
export async function criCall<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (err) {
    throw refineCriError(err);
  }
}
