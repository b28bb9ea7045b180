import { UnavailableError } from "@berth/runtime-core";

/**
 * The error for a daemon that cannot be reached, naming its address and saying plainly why: the
 * transports say "Connection dropped", or "No connection established. Last error: Error: connect
 * EACCES <path>. Resolution note: ".
 */
export function unavailableError(
  address: string,
  operation: string,
  detail: string,
  backend: string | undefined,
  cause: unknown,
): UnavailableError {
  const why = detail.replace(/\s*Resolution note:\s*$/, "");
  const errno = /\b(ENOENT|EACCES|EPERM|ECONNREFUSED)\b/.exec(detail)?.[1];
  const plain =
    errno === "ENOENT"
      ? "socket does not exist"
      : errno === "ECONNREFUSED"
        ? "connection refused"
        : errno
          ? "permission denied"
          : undefined;
  return new UnavailableError(`${operation}: cannot reach ${address}: ${plain ? `${plain} (${why})` : why}`, {
    operation,
    ...(backend ? { backend } : {}),
    status: "UNAVAILABLE",
    daemonMessage: detail,
    cause,
  });
}
