// A fake Kubernetes streaming server for session tests: SPDY/3.1 upgrades handed to a FakePeer (the server
// end of a session, built from the same framing code) driven by each test's handler, and WebSocket
// upgrades answered with a success status unless a test gives its own handler.
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll } from "vitest";
import { type WebSocket, WebSocketServer } from "ws";
import {
  encodeData,
  encodePing,
  encodeRstStream,
  encodeSynReply,
  type Frame,
  FrameParser,
  RstStatus,
} from "../src/spdy/frames.js";
import { HeaderCompressor, HeaderDecompressor, type SpdyHeaders } from "../src/spdy/headers.js";

export interface PeerStream {
  id: number;
  headers: SpdyHeaders;
  data: Buffer[];
  fin: boolean;
  rst?: number;
}

/** The server end of a SPDY session, driven by each test's handler. */
export class FakePeer {
  readonly frames: Frame[] = [];
  readonly streams: PeerStream[] = [];
  readonly closed: Promise<void>;
  readonly #parser = new FrameParser();
  readonly #inflate = new HeaderDecompressor();
  readonly #deflate = new HeaderCompressor();
  #inbox: Promise<void> = Promise.resolve();
  #out: Promise<void> = Promise.resolve();
  #waiters = new Set<() => void>();

  constructor(readonly socket: Socket) {
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("error", () => {});
    // The http server leaves upgraded sockets half-open; a real streaming server closes on EOF.
    socket.on("end", () => socket.end());
    socket.on("data", (chunk: Buffer) => {
      for (const f of this.#parser.push(chunk)) this.#inbox = this.#inbox.then(() => this.#onFrame(f));
    });
  }

  async #onFrame(f: Frame): Promise<void> {
    if (f.type === "syn_stream") {
      this.streams.push({
        id: f.streamId,
        headers: await this.#inflate.decompress(f.headerBlock),
        data: [],
        fin: f.fin,
      });
    } else if (f.type === "data") {
      const s = this.stream(f.streamId);
      if (s) {
        if (f.data.length) s.data.push(f.data);
        if (f.fin) s.fin = true;
      }
    } else if (f.type === "rst_stream") {
      const s = this.stream(f.streamId);
      if (s) s.rst = f.status;
    } else if (f.type === "ping" && f.id % 2 === 1) {
      this.send(() => encodePing(f.id));
    }
    this.frames.push(f);
    for (const w of this.#waiters) w();
  }

  stream(idOrType: number | string): PeerStream | undefined {
    return this.streams.find((s) =>
      typeof idOrType === "number" ? s.id === idOrType : s.headers.streamtype?.[0] === idOrType,
    );
  }

  /** Resolves with check()'s first defined value, re-checked after every frame. */
  until<T>(check: () => T | undefined | false, ms = 5_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const run = () => {
        const v = check();
        if (v !== undefined && v !== false) {
          this.#waiters.delete(run);
          clearTimeout(timer);
          resolve(v);
        }
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(run);
        reject(new Error("fake peer: timed out waiting"));
      }, ms);
      this.#waiters.add(run);
      run();
    });
  }

  /** Frames go out in call order. */
  send(make: () => Buffer | Promise<Buffer>): Promise<void> {
    this.#out = this.#out.then(async () => {
      const b = await make();
      if (!this.socket.destroyed) this.socket.write(b);
    });
    return this.#out;
  }

  reply(id: number): Promise<void> {
    return this.send(async () => encodeSynReply(id, await this.#deflate.compress({})));
  }

  /** A header block in this session's compression stream (blocks must go out in the order made). */
  compress(headers: Record<string, string>): Promise<Buffer> {
    return this.#deflate.compress(headers);
  }

  data(id: number, data: string | Buffer, fin = false): Promise<void> {
    return this.send(() => encodeData(id, typeof data === "string" ? Buffer.from(data) : data, fin));
  }

  rst(id: number, status: number = RstStatus.CANCEL): Promise<void> {
    return this.send(() => encodeRstStream(id, status));
  }

  /** Wait for `n` streams and reply to all. */
  async accept(n: number): Promise<PeerStream[]> {
    const streams = await this.until(() => this.streams.length >= n && this.streams.slice(0, n));
    for (const s of streams) await this.reply(s.id);
    return streams;
  }

  async end(): Promise<void> {
    await this.#out;
    this.socket.end();
  }
}

export type Handler = (peer: FakePeer, req: IncomingMessage) => void | Promise<void>;
const handlers = new Map<string, { protocol?: string; handler: Handler }>();
const wsHandlers = new Map<string, (ws: WebSocket, req: IncomingMessage) => void>();
const wss = new WebSocketServer({ noServer: true });
const server = createServer((_req, res) => res.writeHead(404).end());
const seen: IncomingMessage[] = [];
server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
  const path = new URL(req.url ?? "/", "http://x").pathname;
  seen.push(req);
  if (req.headers.upgrade?.toLowerCase() === "websocket") {
    wss.handleUpgrade(req, socket, head, (ws) => {
      const own = wsHandlers.get(path);
      if (own) return own(ws, req);
      ws.on("message", () => {});
      ws.send(Buffer.concat([Buffer.of(3), Buffer.from(JSON.stringify({ status: "Success" }))]));
      ws.close(1000);
    });
    return;
  }
  const h = handlers.get(path);
  if (!h) {
    socket.end(
      "HTTP/1.1 400 Bad Request\r\nContent-Length: 23\r\nConnection: close\r\n\r\nunable to upgrade: nope",
    );
    return;
  }
  socket.write(
    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n" +
      (h.protocol === "" ? "" : `X-Stream-Protocol-Version: ${h.protocol ?? "v4.channel.k8s.io"}\r\n`) +
      "\r\n",
  );
  const peer = new FakePeer(socket);
  if (head.length) socket.unshift(head);
  void Promise.resolve(h.handler(peer, req)).catch(() => socket.destroy());
});
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
/** The server's base URL. */
export const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
/** Every upgrade request seen, in order. */
export { seen };

afterAll(() => {
  wss.close();
  server.close();
});

let n = 0;
/** Register a handler under a fresh path; returns its URL. */
export function route(handler: Handler, protocol?: string): string {
  const path = `/t${++n}`;
  handlers.set(path, protocol === undefined ? { handler } : { handler, protocol });
  return `${base}${path}`;
}

/** Register a WebSocket handler under a fresh path; returns its URL. */
export function routeWebSocket(handler: (ws: WebSocket, req: IncomingMessage) => void): string {
  const path = `/w${++n}`;
  wsHandlers.set(path, handler);
  return `${base}${path}`;
}
