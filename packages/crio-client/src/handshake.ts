// What the streaming operations share: the error an abort ends them with (exec, attach, port-forward, and
// their handshakes), and how much of a refused upgrade's body is read (the WebSocket upgrade in channel.ts,
// the SPDY one in spdy/upgrade.ts).
import type { IncomingMessage } from "node:http";
import { AbortedError } from "@berth/runtime-core";

/** Characters of a refused upgrade's body kept to show why; the rest is not waited for. */
export const MAX_REFUSAL_BODY_CHARS = 4096;

/** The error of a streaming `operation` that `signal` cut short. */
export function abortedError(operation: string, signal: AbortSignal | undefined): AbortedError {
  return new AbortedError(`${operation}: aborted`, { operation, backend: "cri", cause: signal?.reason });
}

/**
 * Read the body of an answer that refused the upgrade, up to MAX_REFUSAL_BODY_CHARS (the response is
 * destroyed once that much came), and hand it to `done`, trimmed, once the response closes.
 */
export function readRefusalBody(res: IncomingMessage, done: (body: string) => void): void {
  let body = "";
  res.setEncoding("utf8");
  res.on("data", (c: string) => {
    body += c;
    if (body.length >= MAX_REFUSAL_BODY_CHARS) res.destroy();
  });
  res.once("close", () => done(body.slice(0, MAX_REFUSAL_BODY_CHARS).trim()));
}
