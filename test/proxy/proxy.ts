// A fault-injecting proxy for integration tests: it listens on a unix socket, forwards every connection
// to a real daemon's socket, and breaks the daemon→client direction of each connection in one chosen
// way: cut it after N bytes, overwrite bytes, stall it (for a while or for good), or corrupt an HTTP/1.1
// chunk-size line. The request always reaches the daemon intact; the fault fires once the answer is
// flowing, at an offset counted from an anchor:
//   "response"  the first byte of the (armed) HTTP response, status line included;
//   "body"      the first byte of the HTTP response body, de-chunked (offset 0 is the first payload
//               byte whatever the chunk framing), identity and 101-upgraded bodies counted as they come;
//   "h2-data"   the first byte of HTTP/2 DATA payload on any stream: for gRPC, the 5-byte message
//               prefix [compressed flag, length u32] followed by the protobuf. (Padding, which gRPC
//               servers do not send, would be counted as payload.)
// Each connection gets the fault once. Content-Length bodies are not delimited: after one, the rest of
// the connection counts as body (faults are meant for the first armed response).
import { rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export type Anchor = "response" | "body" | "h2-data";

export type Fault =
  /** Forward `at` bytes past the anchor, then close both sides. */
  | { kind: "truncate"; anchor: Anchor; at: number; match?: string }
  /** Overwrite the bytes at `at`, `at + 1`... (anchor-relative positions) with `bytes`. */
  | { kind: "corrupt"; anchor: Anchor; at: number; bytes: readonly number[]; match?: string }
  /** Forward `at` bytes past the anchor, then hold the rest: for `ms`, or until the connection closes. */
  | { kind: "stall"; anchor: Anchor; at: number; ms?: number; match?: string }
  /** Overwrite the first character of the size line of the first chunk starting at body offset `at`
   *  or later (HTTP/1.1 chunked bodies only). */
  | { kind: "chunk-size"; at: number; match?: string };

// `match` (HTTP anchors only): the fault waits on each connection for a request whose bytes contain
// this text ("/logs?") within one read, and applies to the response to it (clients here send one request
// at a time per connection). Without it the first response is used.

export interface FaultProxyOptions {
  /** The daemon's socket: a path or unix:///path. */
  target: string;
  fault: Fault;
}

const CR = 0x0d;
const LF = 0x0a;
const H2_HEADER = 9;
const H2_DATA = 0x0;

/** Strip unix:// from a socket address. */
export function socketPathOf(address: string): string {
  return address.replace(/^unix:\/\//, "");
}

let serial = 0;

export class FaultProxy {
  readonly socketPath: string;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  /** Faults that actually fired (a fault whose trigger point was never reached does not count). */
  injected = 0;

  private constructor(
    readonly target: string,
    readonly fault: Fault,
  ) {
    this.socketPath = join(tmpdir(), `berth-proxy-${process.pid}-${++serial}.sock`);
    // Half-open both ways, so a client's end of stdin (exec, attach) reaches the daemon as it is.
    this.#server = createServer({ allowHalfOpen: true }, (client) => this.#accept(client));
  }

  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const proxy = new FaultProxy(socketPathOf(options.target), options.fault);
    rmSync(proxy.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once("error", reject);
      proxy.#server.listen(proxy.socketPath, () => {
        proxy.#server.off("error", reject);
        resolve();
      });
    });
    return proxy;
  }

  /** unix:///path, for clients that want an address. */
  get address(): string {
    return `unix://${this.socketPath}`;
  }

  /** Drop every connection, stop listening, remove the socket file. */
  async close(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.socketPath, { force: true });
  }

  #accept(client: Socket): void {
    const upstream = createConnection({ path: this.target, allowHalfOpen: true });
    this.#sockets.add(client);
    this.#sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
    };
    client.on("error", drop);
    upstream.on("error", drop);
    client.on("close", drop);
    upstream.on("close", drop);
    const fault = this.fault;
    const injector = new Injector(fault, {
      write: (b) => {
        if (b.byteLength > 0 && !client.destroyed) client.write(b);
      },
      cut: () => {
        // Let what was forwarded reach the client, then end: the client sees EOF mid-answer.
        upstream.destroy();
        client.end();
      },
      fired: () => {
        this.injected++;
      },
      later: (ms, fn) => {
        const t = setTimeout(() => {
          this.#timers.delete(t);
          fn();
        }, ms);
        this.#timers.add(t);
      },
    });
    // With `match`, the fault waits for that request; without, it applies to the first response.
    let armed = !("match" in fault && fault.match);
    client.on("data", (chunk: Buffer) => {
      if (!armed && "match" in fault && fault.match && chunk.includes(fault.match)) {
        armed = true;
        injector.arm();
      }
      upstream.write(chunk);
    });
    client.on("end", () => upstream.end());
    if (armed) injector.arm();
    upstream.on("data", (chunk: Buffer) => injector.push(chunk));
    upstream.on("end", () => {
      if (!injector.holding) client.end();
      else injector.onUpstreamEnd = () => client.end();
    });
  }
}

interface Sink {
  write(b: Buffer): void;
  cut(): void;
  fired(): void;
  later(ms: number, fn: () => void): void;
}

type HttpState =
  | "head"
  | "identity"
  | "chunk-size"
  | "chunk-ext"
  | "chunk-size-lf"
  | "chunk-data"
  | "chunk-data-cr"
  | "chunk-data-lf"
  | "trailers";

/** Applies one fault to one connection's daemon→client bytes, tracking where the anchor lies. */
class Injector {
  #armed = false;
  #done = false;
  /** Held bytes of a stall. */
  #held: Buffer[] | undefined;
  /** Called when the daemon's side ended during a stall, once the held bytes have gone out. */
  onUpstreamEnd: (() => void) | undefined;
  /** Position of the next byte relative to the anchor (-1 before the anchor). */
  #pos = -1;
  // HTTP/1.1 response tracking
  #http: HttpState = "head";
  #head = "";
  #chunkLeft = 0;
  #inSizeLine = false;
  #trailerLine = 0;
  // HTTP/2 frame tracking
  #h2Header = Buffer.alloc(H2_HEADER);
  #h2Fill = 0;
  #h2Left = 0;
  #h2IsData = false;

  constructor(
    readonly fault: Fault,
    readonly sink: Sink,
  ) {
    // HTTP/2: the daemon's frames are tracked from the connection's first byte.
    if (this.#anchor === "h2-data") this.#armed = true;
  }

  get holding(): boolean {
    return this.#held !== undefined;
  }

  get #anchor(): Anchor {
    return this.fault.kind === "chunk-size" ? "body" : this.fault.anchor;
  }

  arm(): void {
    if (this.#anchor === "h2-data") return;
    this.#armed = true;
    if (this.#anchor === "response") this.#pos = 0;
  }

  push(chunk: Buffer): void {
    if (this.#held) {
      this.#held.push(chunk);
      return;
    }
    if (!this.#armed || this.#done) {
      this.sink.write(chunk);
      return;
    }
    let out = chunk;
    let copied = false;
    for (let i = 0; i < chunk.byteLength; i++) {
      const action = this.#step(out[i] as number);
      if (action === "pass") continue;
      if (action === "overwrite" || action === "size-line") {
        if (!copied) {
          out = Buffer.from(chunk);
          copied = true;
        }
        if (action === "size-line") {
          out[i] = 0x7a; // 'z': not a hex digit, the chunk-size line no longer parses
          this.#finish();
        } else {
          const f = this.fault as Extract<Fault, { kind: "corrupt" }>;
          out[i] = f.bytes[this.#pos - 1 - f.at] as number;
          if (this.#pos - f.at >= f.bytes.length) this.#finish();
        }
        continue;
      }
      // truncate or stall at byte i: what came before goes through.
      this.sink.write(out.subarray(0, i));
      this.#finish();
      if (this.fault.kind === "truncate") {
        this.sink.cut();
        return;
      }
      const stall = this.fault as Extract<Fault, { kind: "stall" }>;
      this.#held = [out.subarray(i)];
      if (stall.ms !== undefined) this.sink.later(stall.ms, () => this.#release());
      return;
    }
    this.sink.write(out);
  }

  #finish(): void {
    if (!this.#done) this.sink.fired();
    this.#done = true;
  }

  #release(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const b of held) this.sink.write(b);
    this.onUpstreamEnd?.();
  }

  /** Advance over one byte; say what to do with it. `#pos` is the anchor position of the byte after. */
  #step(byte: number): "pass" | "overwrite" | "size-line" | "hit" {
    const anchored = this.#anchor === "h2-data" ? this.#stepH2(byte) : this.#stepHttp(byte);
    if (anchored === "size-start") return "size-line";
    if (anchored !== "payload") return "pass";
    const p = this.#pos;
    this.#pos++;
    const f = this.fault;
    if (f.kind === "chunk-size") return "pass";
    if (f.kind === "corrupt") return p >= f.at && p < f.at + f.bytes.length ? "overwrite" : "pass";
    return p === f.at ? "hit" : "pass";
  }

  #stepH2(byte: number): "payload" | "frame" {
    if (this.#h2Left === 0 || this.#h2Fill > 0) {
      this.#h2Header[this.#h2Fill++] = byte;
      if (this.#h2Fill === H2_HEADER) {
        this.#h2Fill = 0;
        const h = this.#h2Header;
        this.#h2Left = ((h[0] as number) << 16) | ((h[1] as number) << 8) | (h[2] as number);
        const stream = h.readUInt32BE(5) & 0x7fffffff;
        this.#h2IsData = h[3] === H2_DATA && stream !== 0;
        if (this.#h2IsData && this.#pos < 0) this.#pos = 0;
      }
      return "frame";
    }
    this.#h2Left--;
    return this.#h2IsData ? "payload" : "frame";
  }

  #stepHttp(byte: number): "payload" | "size-start" | "framing" {
    if (this.#anchor === "response") return "payload";
    switch (this.#http) {
      case "head": {
        this.#head += String.fromCharCode(byte);
        if (!this.#head.endsWith("\r\n\r\n")) return "framing";
        const head = this.#head.toLowerCase();
        this.#head = "";
        const status = Number(/^http\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
        if (status >= 100 && status < 200 && status !== 101) return "framing"; // 100 Continue: another head
        this.#pos = 0;
        if (status !== 101 && /\r\ntransfer-encoding:[^\r]*chunked/.test(head)) {
          this.#http = "chunk-size";
          this.#inSizeLine = false;
        } else {
          this.#http = "identity";
        }
        return "framing";
      }
      case "identity":
        return "payload";
      case "chunk-size": {
        const fault = this.fault;
        const first = !this.#inSizeLine;
        if (first) {
          this.#inSizeLine = true;
          this.#chunkLeft = 0;
        }
        if (byte === CR) {
          this.#http = "chunk-size-lf";
          return "framing";
        }
        if (byte === 0x3b) {
          this.#http = "chunk-ext";
          return "framing";
        }
        this.#chunkLeft = this.#chunkLeft * 16 + Number.parseInt(String.fromCharCode(byte), 16);
        return first && fault.kind === "chunk-size" && this.#pos >= fault.at ? "size-start" : "framing";
      }
      case "chunk-ext":
        if (byte === CR) this.#http = "chunk-size-lf";
        return "framing";
      case "chunk-size-lf":
        if (byte === LF) {
          this.#inSizeLine = false;
          this.#http = this.#chunkLeft === 0 ? "trailers" : "chunk-data";
          this.#trailerLine = 0;
        }
        return "framing";
      case "chunk-data":
        if (--this.#chunkLeft === 0) this.#http = "chunk-data-cr";
        return "payload";
      case "chunk-data-cr":
        this.#http = "chunk-data-lf";
        return "framing";
      case "chunk-data-lf":
        this.#http = "chunk-size";
        return "framing";
      case "trailers":
        // The body is over; a trailer section ends with an empty line. Another response may follow.
        if (byte === LF) {
          if (this.#trailerLine === 0) {
            this.#http = "head";
            this.#pos = -1;
          }
          this.#trailerLine = 0;
        } else if (byte !== CR) {
          this.#trailerLine++;
        }
        return "framing";
    }
  }
}
