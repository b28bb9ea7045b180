// The client end of a SPDY/3.1 session over an upgraded socket: streams the client opens (odd ids), their
// replies, data both ways with FIN half-closes, resets, pings, GOAWAY and flow control.
//
// Flow control. The Kubernetes streaming servers (moby/spdystream, in the kubelet, containerd and CRI-O)
// implement none: they never send WINDOW_UPDATE or SETTINGS and ignore both. So by default ("adaptive")
// this client treats a peer as not flow-controlled until it shows otherwise (any WINDOW_UPDATE or
// SETTINGS frame), and from then on keeps SPDY/3.1's windows both ways:
// - Sending: windows are always counted; once enforced, data waits for the peer's WINDOW_UPDATE. Holding
//   spdystream to the 64 KiB initial window would stall stdin for good after 64 KiB.
// - Receiving: consumed data is credited back with WINDOW_UPDATE (per stream and for the session), in
//   batches of half a window. Not to spdystream: an update that reaches it after it closed its end makes
//   its kernel answer with a TCP reset, and a reset discards whatever output this side had not read yet.
// Either way a lagging consumer pauses the socket, so TCP pushes back on the server.
// `flowControl: "strict"` keeps the windows from the first byte, for peers that implement them.
//
// Hostile servers (the HTTP/2 flood CVEs 2019-9512, -9514, -9515 are the model): every answer a server's
// frame calls for (PING replies, resets, window updates) counts until written, and a server that leaves
// too many unread ends the session; so do too many frames on streams the client never opened, too many
// streams the server tries to open, and frames or header blocks over their caps. Frames waiting to be
// handled (behind header decompression) pause the socket past a high-water mark. See SpdyLimits.
import type { Duplex } from "node:stream";
import { type BerthError, isBerthError, ProtocolError, UnavailableError } from "@berth/runtime-core";
import {
  encodeData,
  encodeGoAway,
  encodePing,
  encodeRstStream,
  encodeSynStream,
  encodeWindowUpdate,
  type Frame,
  FrameParser,
  GoAwayStatus,
  RstStatus,
  SettingsId,
} from "./frames.js";
import {
  HeaderCompressor,
  HeaderDecompressor,
  MAX_HEADER_BLOCK_BYTES,
  type SpdyHeaders,
  type SpdyHeadersInit,
} from "./headers.js";

/** SPDY/3's initial window, per stream and (3.1) for the session. */
export const DEFAULT_WINDOW = 64 * 1024;
/** Data frames this client sends carry at most this much. */
export const MAX_DATA_CHUNK = 16 * 1024;
const MAX_WINDOW = 0x7fff_ffff;

/** How a stream's incoming half ended. */
export type StreamEnd =
  /** The peer sent FIN. */
  | { kind: "fin" }
  /** The peer sent RST_STREAM with this status. */
  | { kind: "reset"; status: number }
  /** The session ended first (dropped, GOAWAY, closed by us): `error` says how. */
  | { kind: "lost"; error: BerthError };

export interface OpenStreamOptions {
  /** Send FIN with SYN_STREAM: the client will write nothing. */
  fin?: boolean;
  /** 0 (highest) to 7. */
  priority?: number;
  /** Incoming data, in order. */
  ondata?: (chunk: Buffer) => void;
  /** Called once, when the incoming half ends. */
  onend?: (end: StreamEnd) => void;
}

/** What a server may make this client hold or do before the session ends with a ProtocolError. */
export interface SpdyLimits {
  /** Largest DATA frame payload accepted (the streaming servers write 32 KiB at a time). */
  maxDataFrameBytes: number;
  /** Largest control frame payload accepted (a compressed header block, mostly). */
  maxControlFrameBytes: number;
  /** Answers to the server's frames (PING replies, resets, window updates) queued unwritten. */
  maxQueuedAnswers: number;
  /** Frames on streams the client never opened, over the session. */
  maxInvalidFrames: number;
  /** Streams the server tries to open (each refused), over the session. */
  maxRefusedStreams: number;
  /** Received bytes waiting to be handled before the socket is paused (resumed below a quarter). */
  inboxHighWater: number;
  /** This client's own PINGs left unanswered at once. */
  maxOutstandingPings: number;
}

/** nghttp2 queues 1000 answers; Node's http2 allows 1000 invalid frames and 100 rejected streams. */
export const DEFAULT_SPDY_LIMITS: Readonly<SpdyLimits> = Object.freeze({
  maxDataFrameBytes: 1024 * 1024,
  maxControlFrameBytes: MAX_HEADER_BLOCK_BYTES + 4096,
  maxQueuedAnswers: 1000,
  maxInvalidFrames: 1000,
  maxRefusedStreams: 100,
  inboxHighWater: 1024 * 1024,
  maxOutstandingPings: 10,
});

export interface SpdyConnectionOptions {
  /** Named in errors. */
  operation?: string;
  /** Bounds on what the server can make the session hold (defaults: DEFAULT_SPDY_LIMITS). */
  limits?: Partial<SpdyLimits>;
  /**
   * "adaptive" (default): keep flow-control windows (wait for the peer's, credit ours) only once the peer
   * shows it keeps them; "strict": from the start.
   */
  flowControl?: "adaptive" | "strict";
}

/** How the session ended. */
export interface SpdyClose {
  /** Why, when it was not a close by either side: dropped socket, protocol error, destroy(err). */
  error: BerthError | undefined;
  /** The peer closed the socket or sent GOAWAY (rather than this client closing it). */
  byPeer: boolean;
}

const RST_NAMES = Object.fromEntries(Object.entries(RstStatus).map(([k, v]) => [v, k]));
export function rstStatusName(status: number): string {
  return RST_NAMES[status] ?? `status ${status}`;
}

/** One stream the client opened. Writes honour the send windows; `end()` half-closes with FIN. */
export class SpdyStream {
  readonly id: number;
  readonly headers: SpdyHeadersInit;
  /** The peer's SYN_REPLY headers. Rejects if the stream is reset or the session ends first. */
  readonly reply: Promise<SpdyHeaders>;
  /** Set once the peer's half has ended. */
  remoteEnd: StreamEnd | undefined;
  /** Set once this client sent FIN or RST_STREAM. */
  localEnded = false;
  /** @internal */ sendWindow: number;
  /** @internal */ recvUnacked = 0;
  /** @internal */ readonly options: OpenStreamOptions;
  /** @internal */ settleReply: (headers: SpdyHeaders | BerthError) => void = () => {};
  readonly #conn: SpdyConnection;

  /** @internal */
  constructor(
    conn: SpdyConnection,
    id: number,
    headers: SpdyHeadersInit,
    sendWindow: number,
    options: OpenStreamOptions,
  ) {
    this.#conn = conn;
    this.id = id;
    this.headers = headers;
    this.sendWindow = sendWindow;
    this.options = options;
    this.localEnded = options.fin ?? false;
    this.reply = new Promise<SpdyHeaders>((resolve, reject) => {
      this.settleReply = (h) => {
        this.settleReply = () => {};
        if (h instanceof Error) reject(h);
        else resolve(h);
      };
    });
    this.reply.catch(() => {});
  }

  /** Send data; resolves once it is handed to the socket. */
  write(data: Uint8Array): Promise<void> {
    return this.#conn.sendData(this, data, false);
  }

  /** Half-close: send FIN (after `data`, if any). The peer's half stays open. */
  end(data: Uint8Array = new Uint8Array(0)): Promise<void> {
    return this.#conn.sendData(this, data, true);
  }

  /** Abort the stream both ways with RST_STREAM (CANCEL by default). */
  reset(status: number = RstStatus.CANCEL): void {
    this.#conn.resetStream(this, status);
  }
}

/** What a frame holds of the bytes it came in. */
function frameBytes(item: InboxItem): number {
  if (item.type === "eof" || item.type === "malformed") return 0;
  if (item.type === "data") return 8 + item.data.length;
  if ("headerBlock" in item) return 8 + item.headerBlock.length;
  if (item.type === "unknown") return 8 + item.payload.length;
  return 8;
}

type InboxItem =
  | Frame
  | { type: "eof"; error: BerthError | undefined }
  | { type: "malformed"; error: unknown };

export class SpdyConnection {
  readonly operation: string;
  /** Settles once, when the session is over. Never rejects. */
  readonly closed: Promise<SpdyClose>;
  readonly #socket: Duplex;
  readonly #limits: SpdyLimits;
  readonly #parser: FrameParser;
  readonly #compressor = new HeaderCompressor();
  readonly #decompressor = new HeaderDecompressor();
  readonly #streams = new Map<number, SpdyStream>();
  readonly #strict: boolean;
  #enforce: boolean;
  #nextStreamId = 1;
  #nextPingId = 1;
  readonly #pings = new Map<
    number,
    { resolve: (ms: number) => void; reject: (e: Error) => void; t0: number }
  >();
  #inbox: InboxItem[] = [];
  /** Bytes of the frames in the inbox. */
  #inboxBytes = 0;
  /** Paused because the inbox is full, or because a consumer lags (pause()). */
  #inboxPaused = false;
  #consumerPaused = false;
  /** Answers queued and not yet written; frames on never-opened streams; streams the server opened. */
  #queuedAnswers = 0;
  #invalidFrames = 0;
  #refusedStreams = 0;
  #malformed = false;
  #pumping = false;
  #sendQueue: Promise<void> = Promise.resolve();
  #sessionSendWindow = DEFAULT_WINDOW;
  #initialSendWindow = DEFAULT_WINDOW;
  #sessionRecvUnacked = 0;
  #windowWaiters: Array<() => void> = [];
  /** Set when this client starts closing (close() or destroy()). */
  #closingError: BerthError | undefined;
  #closingByUs = false;
  #peerGoAway: number | undefined;
  #finished: SpdyClose | undefined;
  #resolveClosed: (c: SpdyClose) => void = () => {};
  /** Rejecters of writes not yet flushed, failed together when the session ends. */
  readonly #pendingWrites = new Set<(e: BerthError) => void>();
  #closeTimer: NodeJS.Timeout | undefined;

  /** `head`: bytes that arrived with the upgrade response, before the socket was handed over. */
  constructor(socket: Duplex, options: SpdyConnectionOptions = {}, head?: Buffer) {
    this.#socket = socket;
    this.operation = options.operation ?? "spdy";
    this.#limits = { ...DEFAULT_SPDY_LIMITS, ...options.limits };
    this.#parser = new FrameParser(this.#limits.maxDataFrameBytes, this.#limits.maxControlFrameBytes);
    this.#strict = options.flowControl === "strict";
    this.#enforce = this.#strict;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });

    let socketError: Error | undefined;
    socket.on("data", (chunk: Buffer) => this.#receive(chunk));
    socket.on("error", (err) => {
      socketError ??= err;
    });
    socket.once("close", () => {
      const error =
        this.#closingError ??
        (this.#closingByUs
          ? undefined
          : new UnavailableError(
              socketError
                ? `${this.operation}: streaming connection failed: ${socketError.message}`
                : `${this.operation}: the streaming server closed the connection`,
              { operation: this.operation, backend: "cri", cause: socketError },
            ));
      this.#inbox.push({ type: "eof", error });
      this.#pump();
    });
    if (head?.length) this.#receive(head);
  }

  /** Bytes received and not handled yet: frames waiting their turn, and a frame still arriving. */
  get bufferedBytes(): number {
    return this.#inboxBytes + this.#parser.pending;
  }

  /** True once the session is over or closing. */
  get closing(): boolean {
    return this.#finished !== undefined || this.#closingByUs || this.#closingError !== undefined;
  }

  /** Open a stream: SYN_STREAM goes out in order; await `stream.reply` for the peer's answer. */
  openStream(headers: SpdyHeadersInit, options: OpenStreamOptions = {}): SpdyStream {
    if (this.closing || this.#peerGoAway !== undefined) throw this.#goneError();
    const id = this.#nextStreamId;
    if (id > MAX_WINDOW) throw new ProtocolError(`${this.operation}: SPDY stream ids exhausted`);
    this.#nextStreamId += 2;
    const stream = new SpdyStream(this, id, headers, this.#initialSendWindow, options);
    this.#streams.set(id, stream);
    const compressed = this.#compressor.compress(headers);
    this.#enqueue(async () =>
      encodeSynStream({
        streamId: id,
        priority: options.priority ?? 0,
        fin: options.fin ?? false,
        headerBlock: await compressed,
      }),
    ).catch((err: unknown) =>
      this.destroy(
        isBerthError(err)
          ? err
          : new UnavailableError(`${this.operation}: cannot open stream ${id}: ${(err as Error).message}`, {
              operation: this.operation,
              backend: "cri",
              cause: err,
            }),
      ),
    );
    return stream;
  }

  /** Round trip of a PING, in milliseconds. */
  ping(): Promise<number> {
    if (this.closing) return Promise.reject(this.#goneError());
    if (this.#pings.size >= this.#limits.maxOutstandingPings)
      return Promise.reject(this.#hostile(`${this.#pings.size} PINGs are still unanswered`));
    const id = this.#nextPingId;
    this.#nextPingId = (this.#nextPingId + 2) % 0x1_0000_0000;
    return new Promise((resolve, reject) => {
      this.#pings.set(id, { resolve, reject, t0: performance.now() });
      this.#enqueue(() => encodePing(id)).catch(reject);
    });
  }

  /** Stop reading the socket (a consumer lags); the peer is pushed back by TCP. */
  pause(): void {
    this.#consumerPaused = true;
    this.#socket.pause();
  }

  resume(): void {
    this.#consumerPaused = false;
    if (!this.#finished && !this.#inboxPaused) this.#socket.resume();
  }

  /**
   * Close politely: GOAWAY, then end the socket; the peer's close finishes the session. Streams still
   * open end as "lost" without an error.
   */
  close(): void {
    if (this.closing) return;
    this.#closingByUs = true;
    this.#enqueue(() => encodeGoAway(0, GoAwayStatus.OK))
      .catch(() => {})
      .finally(() => this.#socket.end());
    // A peer that never closes its side must not keep the session alive.
    this.#closeTimer = setTimeout(() => this.#socket.destroy(), 2_000);
    this.#closeTimer.unref();
  }

  /** Close the socket now; open streams end as "lost" with `error` (if given). */
  destroy(error?: BerthError): void {
    if (this.#finished) return;
    this.#closingByUs = true;
    this.#closingError ??= error;
    // Frames not handled yet are dropped (a flood stops here); the end of the socket is still seen.
    this.#inbox = this.#inbox.filter((item) => item.type === "eof");
    this.#inboxBytes = 0;
    if (error instanceof ProtocolError) {
      // Best effort: tell the peer why before the socket goes.
      this.#socket.write(encodeGoAway(0, GoAwayStatus.PROTOCOL_ERROR));
    }
    this.#socket.destroy();
  }

  // Sending

  /** @internal */
  async sendData(stream: SpdyStream, data: Uint8Array, fin: boolean): Promise<void> {
    let offset = 0;
    do {
      this.#checkWritable(stream);
      let n = Math.min(data.byteLength - offset, MAX_DATA_CHUNK);
      if (n > 0 && this.#enforce) {
        await this.#windowOpen(stream);
        n = Math.min(n, stream.sendWindow, this.#sessionSendWindow);
      }
      stream.sendWindow -= n;
      this.#sessionSendWindow -= n;
      const chunk = data.subarray(offset, offset + n);
      offset += n;
      const last = offset >= data.byteLength;
      if (fin && last) stream.localEnded = true;
      await this.#enqueue(() => encodeData(stream.id, chunk, fin && last));
    } while (offset < data.byteLength);
    if (fin) this.#maybeForget(stream);
  }

  /** @internal */
  resetStream(stream: SpdyStream, status: number): void {
    if (!this.#streams.has(stream.id)) return;
    stream.localEnded = true;
    this.#streams.delete(stream.id);
    if (!this.closing) this.#enqueue(() => encodeRstStream(stream.id, status)).catch(() => {});
    const error = new UnavailableError(`${this.operation}: stream ${stream.id} reset by the client`, {
      operation: this.operation,
      backend: "cri",
    });
    stream.settleReply(error);
    this.#endRemote(stream, { kind: "lost", error });
    this.#wakeWindowWaiters();
  }

  #checkWritable(stream: SpdyStream): void {
    if (this.closing) throw this.#goneError();
    if (stream.localEnded)
      throw new UnavailableError(`${this.operation}: stream ${stream.id} is closed for writing`, {
        operation: this.operation,
        backend: "cri",
      });
    if (stream.remoteEnd?.kind === "reset")
      throw new UnavailableError(
        `${this.operation}: stream ${stream.id} was reset by the server (${rstStatusName(stream.remoteEnd.status)})`,
        { operation: this.operation, backend: "cri" },
      );
  }

  async #windowOpen(stream: SpdyStream): Promise<void> {
    while (this.#enforce && (stream.sendWindow <= 0 || this.#sessionSendWindow <= 0)) {
      await new Promise<void>((resolve) => this.#windowWaiters.push(resolve));
      this.#checkWritable(stream);
    }
  }

  #wakeWindowWaiters(): void {
    const waiters = this.#windowWaiters;
    this.#windowWaiters = [];
    for (const w of waiters) w();
  }

  /** Queue a frame; frames go out in queue order (header compression is asynchronous). */
  #enqueue(make: () => Buffer | Promise<Buffer>): Promise<void> {
    const next = this.#sendQueue.then(async () => {
      if (this.#finished) throw this.#goneError();
      const frame = await make();
      if (this.#finished) throw this.#goneError();
      await new Promise<void>((resolve, reject) => {
        this.#pendingWrites.add(reject);
        this.#socket.write(frame, (err) => {
          this.#pendingWrites.delete(reject);
          if (err) reject(this.#goneError(err));
          else resolve();
        });
      });
    });
    this.#sendQueue = next.catch(() => {});
    return next;
  }

  #goneError(cause?: Error): BerthError {
    return (
      this.#finished?.error ??
      this.#closingError ??
      new UnavailableError(`${this.operation}: the streaming connection is closed`, {
        operation: this.operation,
        backend: "cri",
        cause,
      })
    );
  }

  // Receiving

  #receive(chunk: Buffer): void {
    if (this.#finished || this.#malformed) return;
    try {
      for (const f of this.#parser.parse(chunk)) {
        this.#inboxBytes += frameBytes(f);
        this.#inbox.push(f);
      }
    } catch (error) {
      // Frames before the bad one are still handled, in order; then the session ends.
      this.#malformed = true;
      this.#inbox.push({ type: "malformed", error });
    }
    if (!this.#inboxPaused && this.#inboxBytes > this.#limits.inboxHighWater) {
      this.#inboxPaused = true;
      this.#socket.pause();
    }
    this.#pump();
  }

  /** Resume reading once the inbox is down to a quarter of its high-water mark (and no consumer lags). */
  #inboxDrained(): void {
    if (!this.#inboxPaused || this.#inboxBytes > this.#limits.inboxHighWater / 4) return;
    this.#inboxPaused = false;
    if (!this.#consumerPaused && !this.#finished) this.#socket.resume();
  }

  /** A ProtocolError for a server that floods or misuses the session. */
  #hostile(message: string): ProtocolError {
    return new ProtocolError(`${this.operation}: ${message}`, { operation: this.operation, backend: "cri" });
  }

  /** Queue an answer to a server's frame. False (and the session destroyed) past maxQueuedAnswers. */
  #answer(make: () => Buffer): boolean {
    if (this.#queuedAnswers >= this.#limits.maxQueuedAnswers) {
      this.destroy(
        this.#hostile(`the server leaves the answers to its frames unread (${this.#queuedAnswers} queued)`),
      );
      return false;
    }
    this.#queuedAnswers++;
    const written = () => {
      this.#queuedAnswers--;
    };
    this.#enqueue(make).then(written, written);
    return true;
  }

  /** A frame on a stream this client never opened: counted; true once past maxInvalidFrames. */
  #invalid(streamId: number, what: string): boolean {
    if (++this.#invalidFrames <= this.#limits.maxInvalidFrames) return false;
    this.destroy(
      this.#hostile(
        `${this.#invalidFrames} frames on streams never opened (the last: ${what} on ${streamId})`,
      ),
    );
    return true;
  }

  /** Whether a stream id was never one of this client's: even (the server's) or not handed out yet. */
  #neverOpened(streamId: number): boolean {
    return streamId % 2 === 0 || streamId >= this.#nextStreamId;
  }

  #protocolError(err: unknown): BerthError {
    const message = err instanceof Error ? err.message : String(err);
    return new ProtocolError(`${this.operation}: ${message}`, {
      operation: this.operation,
      backend: "cri",
      cause: err,
    });
  }

  /** Handle queued frames strictly in order, awaiting header decompression where needed. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    void (async () => {
      try {
        while (this.#inbox.length) {
          const item = this.#inbox.shift() as InboxItem;
          this.#inboxBytes -= frameBytes(item);
          this.#inboxDrained();
          if (item.type === "eof") {
            // A destroy while the socket's end waited here has the last word.
            this.#finish(this.#closingError ?? item.error);
            this.#inbox = [];
            break;
          }
          if (this.#finished) continue;
          if (item.type === "malformed") {
            this.destroy(this.#protocolError(item.error));
            continue;
          }
          try {
            await this.#handle(item);
          } catch (err) {
            this.destroy(this.#protocolError(err));
          }
        }
      } finally {
        this.#pumping = false;
      }
    })();
  }

  async #handle(frame: Frame): Promise<void> {
    switch (frame.type) {
      case "data":
        return this.#onData(frame.streamId, frame.data, frame.fin);
      case "syn_reply": {
        const headers = await this.#decompressor.decompress(frame.headerBlock);
        const stream = this.#streams.get(frame.streamId);
        if (!stream) {
          if (this.#neverOpened(frame.streamId)) this.#invalid(frame.streamId, "SYN_REPLY");
          return;
        }
        stream.settleReply(headers);
        if (frame.fin) this.#endRemote(stream, { kind: "fin" });
        return;
      }
      case "headers": {
        await this.#decompressor.decompress(frame.headerBlock);
        const stream = this.#streams.get(frame.streamId);
        if (!stream && this.#neverOpened(frame.streamId)) this.#invalid(frame.streamId, "HEADERS");
        if (stream && frame.fin) this.#endRemote(stream, { kind: "fin" });
        return;
      }
      case "syn_stream":
        // Server push has no place in these protocols; decompress anyway to keep the zlib stream in step.
        await this.#decompressor.decompress(frame.headerBlock);
        if (frame.streamId % 2 === 1)
          throw new Error(`the server opened stream ${frame.streamId}, a client id`);
        if (++this.#refusedStreams > this.#limits.maxRefusedStreams) {
          this.destroy(this.#hostile(`the server opened ${this.#refusedStreams} streams (all refused)`));
          return;
        }
        this.#answer(() => encodeRstStream(frame.streamId, RstStatus.REFUSED_STREAM));
        return;
      case "rst_stream": {
        const stream = this.#streams.get(frame.streamId);
        if (!stream) {
          if (this.#neverOpened(frame.streamId)) this.#invalid(frame.streamId, "RST_STREAM");
          return;
        }
        this.#streams.delete(stream.id);
        stream.localEnded = true;
        stream.settleReply(
          new UnavailableError(
            `${this.operation}: the server reset stream ${stream.id} (${rstStatusName(frame.status)})`,
            { operation: this.operation, backend: "cri", status: rstStatusName(frame.status) },
          ),
        );
        this.#endRemote(stream, { kind: "reset", status: frame.status });
        this.#wakeWindowWaiters();
        return;
      }
      case "settings":
        // Only a full SPDY implementation sends SETTINGS: it keeps windows.
        this.#enforce = true;
        for (const e of frame.entries) {
          if (e.id !== SettingsId.INITIAL_WINDOW_SIZE) continue;
          if (e.value > MAX_WINDOW)
            throw new Error(`SETTINGS INITIAL_WINDOW_SIZE of ${e.value} is over 2^31-1`);
          const delta = e.value - this.#initialSendWindow;
          this.#initialSendWindow = e.value;
          for (const s of this.#streams.values()) s.sendWindow += delta;
        }
        this.#wakeWindowWaiters();
        return;
      case "ping":
        if (frame.id % 2 === 0) {
          this.#answer(() => encodePing(frame.id));
        } else {
          const p = this.#pings.get(frame.id);
          this.#pings.delete(frame.id);
          p?.resolve(performance.now() - p.t0);
        }
        return;
      case "goaway": {
        this.#peerGoAway = frame.lastGoodStreamId;
        // Streams past the last one the server processed never ran.
        for (const s of [...this.#streams.values()]) {
          if (s.id <= frame.lastGoodStreamId) continue;
          this.#streams.delete(s.id);
          const error = new UnavailableError(
            `${this.operation}: the server went away before stream ${s.id}`,
            {
              operation: this.operation,
              backend: "cri",
            },
          );
          s.settleReply(error);
          this.#endRemote(s, { kind: "lost", error });
        }
        return;
      }
      case "window_update":
        this.#enforce = true;
        if (frame.streamId === 0) {
          this.#sessionSendWindow = Math.min(this.#sessionSendWindow + frame.delta, MAX_WINDOW);
        } else {
          const stream = this.#streams.get(frame.streamId);
          if (!stream && this.#neverOpened(frame.streamId)) this.#invalid(frame.streamId, "WINDOW_UPDATE");
          if (stream) {
            if (stream.sendWindow + frame.delta > MAX_WINDOW) {
              this.resetStream(stream, RstStatus.FLOW_CONTROL_ERROR);
              return;
            }
            stream.sendWindow += frame.delta;
          }
        }
        this.#wakeWindowWaiters();
        return;
      case "unknown":
        return;
    }
  }

  #onData(streamId: number, data: Buffer, fin: boolean): void {
    this.#credit(0, data.length);
    const stream = this.#streams.get(streamId);
    if (!stream) {
      // Data for a stream this client never opened; streams it closed may still see data in flight.
      if (this.#neverOpened(streamId) && !this.#invalid(streamId, "DATA"))
        this.#answer(() => encodeRstStream(streamId, RstStatus.INVALID_STREAM));
      return;
    }
    if (stream.remoteEnd) return;
    if (data.length) {
      this.#credit(stream.id, data.length, stream);
      stream.options.ondata?.(data);
    }
    if (fin) this.#endRemote(stream, { kind: "fin" });
  }

  /**
   * Give the peer back window for bytes handed to a consumer, in batches of half a window; counted always,
   * sent only to a peer that keeps windows (see the top of this file).
   */
  #credit(streamId: number, n: number, stream?: SpdyStream): void {
    const holder = streamId === 0 ? undefined : stream;
    if (streamId !== 0 && !holder) return;
    const unacked = (holder ? holder.recvUnacked : this.#sessionRecvUnacked) + n;
    const send = this.#enforce && unacked >= DEFAULT_WINDOW / 2;
    const left = send ? 0 : Math.min(unacked, MAX_WINDOW);
    if (holder) holder.recvUnacked = left;
    else this.#sessionRecvUnacked = left;
    if (send) this.#answer(() => encodeWindowUpdate(streamId, Math.min(unacked, MAX_WINDOW)));
  }

  #endRemote(stream: SpdyStream, end: StreamEnd): void {
    if (stream.remoteEnd) return;
    stream.remoteEnd = end;
    if (end.kind !== "fin") stream.settleReply(end.kind === "lost" ? end.error : this.#goneError());
    this.#maybeForget(stream);
    stream.options.onend?.(end);
  }

  #maybeForget(stream: SpdyStream): void {
    if (stream.localEnded && stream.remoteEnd) this.#streams.delete(stream.id);
  }

  #finish(error: BerthError | undefined): void {
    if (this.#finished) return;
    const byPeer = !this.#closingByUs;
    this.#finished = { error, byPeer: byPeer || this.#peerGoAway !== undefined };
    if (this.#closeTimer) clearTimeout(this.#closeTimer);
    const lost =
      error ??
      new UnavailableError(`${this.operation}: the streaming connection closed`, {
        operation: this.operation,
        backend: "cri",
      });
    for (const reject of this.#pendingWrites) reject(lost);
    this.#pendingWrites.clear();
    for (const s of [...this.#streams.values()]) {
      s.settleReply(lost);
      this.#endRemote(s, { kind: "lost", error: lost });
    }
    this.#streams.clear();
    for (const p of this.#pings.values()) p.reject(lost);
    this.#pings.clear();
    this.#wakeWindowWaiters();
    this.#compressor.close();
    this.#decompressor.close();
    this.#resolveClosed(this.#finished);
  }
}
