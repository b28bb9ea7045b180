// What a transport (SPDY in spdy/, WebSocket in exec.ts and portforward.ts) hands the exec/attach and
// port-forward sessions: the channels of one connection and the sink they deliver to. Both sides import
// this module and neither imports the other, so the SPDY layer stays below the verbs that use it.
import type { BerthError } from "@berth/runtime-core";

/** The wire a session runs over. */
export type StreamTransport = "websocket" | "spdy";
/** What a caller may ask for: "auto" prefers SPDY and falls back to WebSocket when SPDY is refused. */
export type StreamTransportOption = StreamTransport | "auto";

/** How a transport's connection ended, for the session to read the exit status against. */
export interface ChannelsEnd {
  /** A transport failure (connection error, protocol violation); takes precedence over any status. */
  error?: BerthError | undefined;
  /** The server ended the error channel itself (it finished), rather than the connection dropping. */
  clean: boolean;
  /** For messages: close code, reason. */
  detail: string;
}

/** Where a transport delivers what the server sends. */
export interface ChannelsSink {
  /** Bytes of the stdout channel. */
  stdout(data: Buffer): void;
  /** Bytes of the stderr channel. */
  stderr(data: Buffer): void;
  /** Bytes of the error channel (the exit Status). */
  status(data: Buffer): void;
  /** Called once, after everything else. */
  closed(end: ChannelsEnd): void;
}

/** The channels of one exec/attach connection: what a StreamSession needs from a transport. */
export interface StreamChannels {
  /** The wire: SPDY or WebSocket. */
  readonly transport: StreamTransport;
  /** The negotiated subprotocol. */
  readonly protocol: string;
  /** Whether endStdin() reaches the command. */
  readonly stdinClosable: boolean;
  /** Start delivering (anything that arrived earlier is delivered now). */
  start(sink: ChannelsSink): void;
  /** Write to stdin; `cb` runs once the chunk is taken (a Writable's write callback). */
  writeStdin(chunk: Buffer, cb: (err?: Error | null) => void): void;
  /** Half-close stdin where the protocol can; otherwise nothing. */
  endStdin(cb: (err?: Error | null) => void): void;
  /** Send a TTY's new size (columns and rows). */
  resize(width: number, height: number): void;
  /** Stop reading from the server while a consumer lags. */
  pause(): void;
  /** Read from the server again. */
  resume(): void;
  /** Close politely. */
  close(): void;
  /** Close now. */
  terminate(): void;
}

/** Where a transport delivers what the server sends on one forwarded connection. */
export interface PortForwardSink {
  /** Bytes from the forwarded port. */
  data(chunk: Buffer): void;
  /** Text on the error channel (the server could not connect, or the connection failed). */
  error(text: string): void;
  /** Called once, last. `dropped`: the connection ended without the server finishing it. */
  closed(end: { dropped: boolean; error?: BerthError | undefined }): void;
}

/** One forwarded connection as a transport provides it. */
export interface PortForwardChannels {
  /** The wire: SPDY or WebSocket. */
  readonly transport: StreamTransport;
  /** Start delivering to `sink`. */
  start(sink: PortForwardSink): void;
  /** Write to the forwarded port; `cb` runs once the chunk is taken. */
  write(chunk: Buffer, cb: (err?: Error | null) => void): void;
  /** Half-close where the transport can; otherwise nothing. */
  end(cb: (err?: Error | null) => void): void;
  /** Stop reading from the server while the consumer lags. */
  pause(): void;
  /** Read from the server again. */
  resume(): void;
  /** Close the connection. */
  close(): void;
}

/** Output held before a session's consumer is attached (only a hostile server sends any). */
export const MAX_EARLY_BYTES = 1024 * 1024;

/**
 * What a transport delivers before its consumer is attached, held in order and handed over on `start`.
 * Past `MAX_EARLY_BYTES` held, `overflow` is called (the transport ends the session) and nothing more is.
 */
export class DeferredSink<S> {
  #sink: S | undefined;
  #held: Array<(sink: S) => void> = [];
  #bytes = 0;
  readonly #overflow: () => void;

  constructor(overflow: () => void) {
    this.#overflow = overflow;
  }

  emit(deliver: (sink: S) => void, bytes = 0): void {
    if (this.#sink) {
      deliver(this.#sink);
      return;
    }
    if (this.#bytes > MAX_EARLY_BYTES) return;
    this.#bytes += bytes;
    if (this.#bytes > MAX_EARLY_BYTES) this.#overflow();
    else this.#held.push(deliver);
  }

  start(sink: S): void {
    this.#sink = sink;
    for (const deliver of this.#held.splice(0)) deliver(sink);
  }
}
