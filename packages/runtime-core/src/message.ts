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

/** The digests a daemon's verification failure message names. */
export interface ReportedMismatch {
  /** The digest (or size) the content should have had. */
  expected: string;
  /** What it had, when the daemon says ("unknown" when it does not: Docker names only the expected one). */
  actual: string;
}

const DIGEST = "[a-z0-9]+:[a-f0-9]+";
/** Each daemon's words for content that failed verification, and where the digests sit in them. */
const MISMATCHES: Array<[RegExp, (m: RegExpExecArray) => ReportedMismatch]> = [
  // containerd's content store (the CRI, and containerd's Content.Write): "unexpected commit digest
  // <actual>, expected <expected>: failed precondition", "unexpected commit size 5, expected 6".
  [
    new RegExp(`unexpected commit digest (${DIGEST}), expected (${DIGEST})`),
    (m) => ({ expected: m[2] ?? "", actual: m[1] ?? "" }),
  ],
  [
    /unexpected commit size (\d+), expected (\d+)/,
    (m) => ({ expected: `${m[2]} bytes`, actual: `${m[1]} bytes` }),
  ],
  [/failed size validation: (\d+) != (\d+)/, (m) => ({ expected: `${m[2]} bytes`, actual: `${m[1]} bytes` })],
  // containers/image (Podman, CRI-O): "Digest did not match, expected <expected>, got <actual>".
  [
    new RegExp(`Digest did not match, expected (${DIGEST}), got (${DIGEST})`),
    (m) => ({ expected: m[1] ?? "", actual: m[2] ?? "" }),
  ],
  [
    new RegExp(`Manifest does not match provided manifest digest (${DIGEST})`),
    (m) => ({ expected: m[1] ?? "", actual: "unknown" }),
  ],
  // Docker Engine: "filesystem layer verification failed for digest <expected>" (also "image config",
  // "image manifest", "manifest").
  [
    new RegExp(`verification failed for digest (${DIGEST})`),
    (m) => ({ expected: m[1] ?? "", actual: "unknown" }),
  ],
];

/**
 * When a daemon's message says that content it pulled did not match its digest or size, the digests it
 * names. The same failure is a DigestMismatchError on every backend, whatever the daemon calls it.
 */
export function digestMismatchIn(message: string): ReportedMismatch | undefined {
  for (const [pattern, read] of MISMATCHES) {
    const m = pattern.exec(message);
    if (m) return read(m);
  }
  return undefined;
}
