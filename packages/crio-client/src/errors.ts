// CRI runtimes report some failures with a generic status and the real reason in the text (containerd
// answers a registry's 401 as UNKNOWN "...: 401 Unauthorized"). Refine those into berth's classes.
import {
  type BerthError,
  type BerthErrorDetails,
  ConflictError,
  DaemonError,
  DigestMismatchError,
  isBerthError,
  NotFoundError,
  TimeoutError,
  UnauthorizedError,
} from "@berth/runtime-core";
import { classifyDaemonMessage, digestMismatchIn } from "@berth/runtime-core/internal";

function details(err: BerthError): BerthErrorDetails {
  return {
    operation: err.operation,
    status: err.status,
    daemonMessage: err.daemonMessage,
    backend: err.backend,
    cause: err,
  };
}

// containerd's texts for a state conflict (a name taken, a container started twice) and for a user or
// group name missing from the image's /etc/passwd or /etc/group.
const CONFLICT = /\bis reserved for\b|\bcontainer is in CONTAINER_[A-Z]+ state\b/;
const NO_SUCH_USER = /\bno (users|groups) found\b|\bunable to find (user|group)\b/;

/** Whether a runtime's error text says the user or group is not in the image's /etc/passwd or /etc/group. */
export function isNoSuchUser(text: string): boolean {
  return NO_SUCH_USER.test(text);
}

/** Refine an error from a CRI call; anything already specific passes through. */
export function refineCriError(err: unknown): unknown {
  if (!isBerthError(err)) return err;
  // Content that failed its digest check: containerd says FAILED_PRECONDITION (a ConflictError by its
  // status), CRI-O UNKNOWN. The same failure is a DigestMismatchError on every backend.
  const mismatch = err instanceof DigestMismatchError ? undefined : digestMismatchIn(err.daemonMessage ?? "");
  if (mismatch) return new DigestMismatchError(err.message, mismatch.expected, mismatch.actual, details(err));
  if (!(err instanceof DaemonError)) return err;
  const text = err.daemonMessage ?? err.message;
  const kind = classifyDaemonMessage(text);
  if (kind === "Unauthorized") return new UnauthorizedError(err.message, details(err));
  if (kind === "Timeout") return new TimeoutError(err.message, details(err));
  if (kind === "NotFound" || isNoSuchUser(text)) return new NotFoundError(err.message, details(err));
  if (CONFLICT.test(text)) return new ConflictError(err.message, details(err));
  return err;
}
