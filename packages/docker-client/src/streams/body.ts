// What a streamed answer becomes once its status has answered the call: NDJSON values, stdout/stderr
// frames (multiplexed or raw, told apart by Content-Type or by the first bytes), the frames of an upgraded
// connection with its write side, or tar bytes as a Node Readable. Each fails with the call's typed
// errors and drops its connection when closed or done.
import { type Duplex, PassThrough, Readable } from "node:stream";
import type {
  FrameStream,
  JsonStream,
  ResponseHeaders,
  StreamFrame,
  TarStream,
  Upgraded,
} from "../operation.js";
import { idleBounded } from "../transport.js";
import { demultiplex, rawFrames } from "./demux.js";
import { ndjson } from "./ndjson.js";

/** A body to read: undici's chunk stream, or an upgraded socket. */
export type Body = AsyncIterable<Uint8Array> & { destroy(): void };

/** Who reads the body, for errors. */
export interface BodyContext {
  /** The operation named by errors. */
  operation: string;
  /** The backend named by errors inside an NDJSON stream. */
  backend: string;
  /** Turns a failure of the body into the call's typed error. */
  mapError: (err: unknown) => Error;
}

/** How a stdout/stderr body is framed: known from Content-Type, or sniffed from its first bytes. */
export type StreamMode = "multiplexed" | "raw" | "sniff";

/** An NDJSON body as parsed values; a line longer than `maxLineBytes` is a ProtocolError. */
export function jsonStream<T>(body: Body, ctx: BodyContext, maxLineBytes: number): JsonStream<T> {
  return {
    close: () => body.destroy(),
    async *[Symbol.asyncIterator]() {
      try {
        yield* ndjson<T>(body, ctx.operation, { maxLineBytes, backend: ctx.backend });
      } catch (err) {
        throw ctx.mapError(err);
      } finally {
        body.destroy();
      }
    },
  };
}

/** A tar body as a Node Readable, so it pipes anywhere (files, tar parsers, other requests). */
export function tarStream(body: Body, headers: ResponseHeaders, ctx: BodyContext): TarStream {
  return Object.assign(Readable.from(mapped(body, ctx.mapError), { objectMode: false }), { headers });
}

/** A body whose failures surface as typed errors. */
async function* mapped(body: Body, mapError: (err: unknown) => Error): AsyncGenerator<Uint8Array> {
  try {
    yield* body;
  } catch (err) {
    throw mapError(err);
  }
}

/** Peek at the first chunk to tell a multiplexed body from a raw one, then replay it. */
async function* sniffed(
  body: AsyncIterable<Uint8Array>,
  operation: string,
  onMode: (tty: boolean) => void,
): AsyncGenerator<StreamFrame> {
  const it = body[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return;
  const head = first.value;
  const muxed =
    head.length >= 4 && (head[0] as number) <= 3 && head[1] === 0 && head[2] === 0 && head[3] === 0;
  onMode(!muxed);
  async function* replay(): AsyncGenerator<Uint8Array> {
    yield head;
    for (;;) {
      const next = await it.next();
      if (next.done) return;
      yield next.value;
    }
  }
  yield* muxed ? demultiplex(replay(), operation) : rawFrames(replay());
}

/** stdout/stderr frames. `atEnd` runs when the body ends by itself (not closed by the caller, not
 *  failed) and may throw. */
export function frameStream(
  body: Body,
  mode: StreamMode,
  ctx: BodyContext,
  atEnd?: () => Promise<void>,
): FrameStream {
  const { operation, mapError } = ctx;
  let tty = mode === "raw";
  let closed = false;
  const frames = (): AsyncGenerator<StreamFrame> =>
    mode === "raw"
      ? rawFrames(body)
      : mode === "multiplexed"
        ? demultiplex(body, operation)
        : sniffed(body, operation, (isTty) => {
            tty = isTty;
          });
  const guarded = async function* (): AsyncGenerator<StreamFrame> {
    try {
      yield* frames();
    } catch (err) {
      throw mapError(err);
    } finally {
      body.destroy();
    }
    if (!closed) await atEnd?.();
  };
  return {
    /** Known from Content-Type, or after the first chunk has been read when the engine does not say. */
    get tty() {
      return tty;
    },
    close: () => {
      closed = true;
      body.destroy();
    },
    [Symbol.asyncIterator]: guarded,
    split() {
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      (async () => {
        for await (const frame of guarded()) {
          const target = frame.stream === "stderr" ? stderr : stdout;
          if (!target.write(frame.data)) {
            await new Promise<void>((resolve) => target.once("drain", resolve));
          }
        }
        stdout.end();
        stderr.end();
      })().catch((err: Error) => {
        stdout.destroy(err);
        stderr.destroy(err);
      });
      return { stdout, stderr };
    },
  };
}

/** The frames of an upgraded connection, with its write side; silent for `idleMs` (0 = no bound), it
 *  fails. `atEnd` as for frameStream. */
export function upgradedStream(
  socket: Duplex,
  mode: StreamMode,
  ctx: BodyContext,
  idleMs: number,
  atEnd: () => Promise<void>,
): Upgraded {
  const body: Body =
    idleMs > 0
      ? Object.assign(idleBounded(socket, idleMs), { destroy: () => socket.destroy() })
      : (socket as unknown as Body);
  return Object.assign(frameStream(body, mode, ctx, atEnd), {
    socket,
    write: (data: Uint8Array | string) =>
      new Promise<void>((resolve, reject) => socket.write(data, (err) => (err ? reject(err) : resolve()))),
    end: () => {
      socket.end();
    },
  });
}
