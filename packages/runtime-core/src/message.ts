// Daemons often report a failure with a generic status (HTTP 500, gRPC UNKNOWN, an error inside a 200
// stream) and the real reason only in the text. One place reads that text for every client.
import type { BerthErrorCode } from "./errors.js";

const UNAUTHORIZED =
  /\b401 Unauthorized\b|unauthorized|authentication required|authorization failed|no basic auth credentials|denied|incorrect username or password/i;
const TIMEOUT = /timeout \S+ exceeded|context deadline exceeded/i;
const NOT_FOUND = /\bnot found\b|manifest unknown|does not exist|no such/i;

/** The error class a daemon's message points at, when it points at one. */
export function classifyDaemonMessage(
  message: string,
): Extract<BerthErrorCode, "Unauthorized" | "Timeout" | "NotFound"> | undefined {
  if (UNAUTHORIZED.test(message)) return "Unauthorized";
  if (TIMEOUT.test(message)) return "Timeout";
  if (NOT_FOUND.test(message)) return "NotFound";
  return undefined;
}
