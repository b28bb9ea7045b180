// SPDY/3 framing (draft-mbelshe-httpbis-spdy-00, section 2.2; SPDY/3.1 adds session-level WINDOW_UPDATE on
// stream 0). Every frame has an 8-byte header. Control frames: bit C=1, a 15-bit version (3), a 16-bit
// type, 8 bits of flags and a 24-bit length. Data frames: C=0, a 31-bit stream id, flags, length.
// Header blocks inside SYN_STREAM, SYN_REPLY and HEADERS are carried here still compressed; headers.ts
// owns their (stateful) zlib stream.
import { ProtocolError } from "@berth/runtime-core";

export const SPDY_VERSION = 3;
/** The largest payload a frame's 24-bit length can describe. */
export const MAX_FRAME_PAYLOAD = 0xff_ffff;
/** Entries a SETTINGS frame may carry (SPDY/3 defines 8 settings). */
export const MAX_SETTINGS_ENTRIES = 64;

export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

/** FLAG_FIN on data frames, SYN_STREAM, SYN_REPLY and HEADERS. */
export const FLAG_FIN = 0x01;
/** FLAG_UNIDIRECTIONAL on SYN_STREAM: the receiver must not send on the stream. */
export const FLAG_UNIDIRECTIONAL = 0x02;
/** FLAG_SETTINGS_CLEAR_SETTINGS on SETTINGS. */
export const FLAG_CLEAR_SETTINGS = 0x01;

/** RST_STREAM status codes. */
export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  INVALID_CREDENTIALS: 10,
  FRAME_TOO_LARGE: 11,
} as const;

/** GOAWAY status codes. */
export const GoAwayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

/** SETTINGS ids (only INITIAL_WINDOW_SIZE matters to this client). */
export const SettingsId = {
  UPLOAD_BANDWIDTH: 1,
  DOWNLOAD_BANDWIDTH: 2,
  ROUND_TRIP_TIME: 3,
  MAX_CONCURRENT_STREAMS: 4,
  CURRENT_CWND: 5,
  DOWNLOAD_RETRANS_RATE: 6,
  INITIAL_WINDOW_SIZE: 7,
  CLIENT_CERTIFICATE_VECTOR_SIZE: 8,
} as const;

export interface SettingsEntry {
  id: number;
  /** Per-entry flags: 1 PERSIST_VALUE, 2 PERSISTED. */
  flags: number;
  value: number;
}

export type Frame =
  | { type: "data"; streamId: number; fin: boolean; data: Buffer }
  | {
      type: "syn_stream";
      streamId: number;
      associatedId: number;
      /** 0 (highest) to 7. */
      priority: number;
      slot: number;
      fin: boolean;
      unidirectional: boolean;
      headerBlock: Buffer;
    }
  | { type: "syn_reply"; streamId: number; fin: boolean; headerBlock: Buffer }
  | { type: "rst_stream"; streamId: number; status: number }
  | { type: "settings"; clear: boolean; entries: SettingsEntry[] }
  | { type: "ping"; id: number }
  | { type: "goaway"; lastGoodStreamId: number; status: number }
  | { type: "headers"; streamId: number; fin: boolean; headerBlock: Buffer }
  | { type: "window_update"; streamId: number; delta: number }
  /** A control frame type this client does not know (CREDENTIAL, NOOP...): the draft says ignore it. */
  | { type: "unknown"; controlType: number; flags: number; payload: Buffer };

const STREAM_ID_MASK = 0x7fff_ffff;

function header(controlType: number, flags: number, length: number): Buffer {
  if (length > MAX_FRAME_PAYLOAD) throw new RangeError(`SPDY frame payload too large: ${length} bytes`);
  const out = Buffer.allocUnsafe(8 + length);
  out.writeUInt32BE((0x8000_0000 | (SPDY_VERSION << 16) | controlType) >>> 0, 0);
  out.writeUInt32BE(((flags << 24) | length) >>> 0, 4);
  return out;
}

function checkStreamId(id: number, allowZero = false): void {
  if (!Number.isInteger(id) || id < (allowZero ? 0 : 1) || id > STREAM_ID_MASK)
    throw new RangeError(`invalid SPDY stream id ${id}`);
}

export function encodeData(streamId: number, data: Uint8Array, fin = false): Buffer {
  checkStreamId(streamId);
  if (data.byteLength > MAX_FRAME_PAYLOAD) throw new RangeError("SPDY data frame too large");
  const out = Buffer.allocUnsafe(8 + data.byteLength);
  out.writeUInt32BE(streamId, 0);
  out.writeUInt32BE((((fin ? FLAG_FIN : 0) << 24) | data.byteLength) >>> 0, 4);
  out.set(data, 8);
  return out;
}

export function encodeSynStream(frame: {
  streamId: number;
  associatedId?: number;
  priority?: number;
  slot?: number;
  fin?: boolean;
  unidirectional?: boolean;
  headerBlock: Uint8Array;
}): Buffer {
  checkStreamId(frame.streamId);
  checkStreamId(frame.associatedId ?? 0, true);
  const priority = frame.priority ?? 0;
  if (!Number.isInteger(priority) || priority < 0 || priority > 7)
    throw new RangeError(`SPDY priority ${priority} is not 0..7`);
  const flags = (frame.fin ? FLAG_FIN : 0) | (frame.unidirectional ? FLAG_UNIDIRECTIONAL : 0);
  const out = header(FrameType.SYN_STREAM, flags, 10 + frame.headerBlock.byteLength);
  out.writeUInt32BE(frame.streamId, 8);
  out.writeUInt32BE(frame.associatedId ?? 0, 12);
  out[16] = priority << 5;
  out[17] = frame.slot ?? 0;
  out.set(frame.headerBlock, 18);
  return out;
}

function encodeHeaderCarrier(type: number, streamId: number, headerBlock: Uint8Array, fin: boolean): Buffer {
  checkStreamId(streamId);
  const out = header(type, fin ? FLAG_FIN : 0, 4 + headerBlock.byteLength);
  out.writeUInt32BE(streamId, 8);
  out.set(headerBlock, 12);
  return out;
}

export function encodeSynReply(streamId: number, headerBlock: Uint8Array, fin = false): Buffer {
  return encodeHeaderCarrier(FrameType.SYN_REPLY, streamId, headerBlock, fin);
}

export function encodeHeaders(streamId: number, headerBlock: Uint8Array, fin = false): Buffer {
  return encodeHeaderCarrier(FrameType.HEADERS, streamId, headerBlock, fin);
}

export function encodeRstStream(streamId: number, status: number): Buffer {
  checkStreamId(streamId);
  const out = header(FrameType.RST_STREAM, 0, 8);
  out.writeUInt32BE(streamId, 8);
  out.writeUInt32BE(status, 12);
  return out;
}

export function encodeSettings(entries: readonly SettingsEntry[], clear = false): Buffer {
  const out = header(FrameType.SETTINGS, clear ? FLAG_CLEAR_SETTINGS : 0, 4 + 8 * entries.length);
  out.writeUInt32BE(entries.length, 8);
  entries.forEach((e, i) => {
    // SPDY/3: 8 bits of flags, then a 24-bit id, big-endian (SPDY/2's little-endian id is gone).
    out.writeUInt32BE((((e.flags & 0xff) << 24) | (e.id & 0xff_ffff)) >>> 0, 12 + 8 * i);
    out.writeUInt32BE(e.value >>> 0, 16 + 8 * i);
  });
  return out;
}

export function encodePing(id: number): Buffer {
  const out = header(FrameType.PING, 0, 4);
  out.writeUInt32BE(id >>> 0, 8);
  return out;
}

export function encodeGoAway(lastGoodStreamId: number, status: number = GoAwayStatus.OK): Buffer {
  checkStreamId(lastGoodStreamId, true);
  const out = header(FrameType.GOAWAY, 0, 8);
  out.writeUInt32BE(lastGoodStreamId, 8);
  out.writeUInt32BE(status, 12);
  return out;
}

/** Stream 0 updates the session window (SPDY/3.1). */
export function encodeWindowUpdate(streamId: number, delta: number): Buffer {
  checkStreamId(streamId, true);
  if (!Number.isInteger(delta) || delta < 1 || delta > STREAM_ID_MASK)
    throw new RangeError(`invalid SPDY window delta ${delta}`);
  const out = header(FrameType.WINDOW_UPDATE, 0, 8);
  out.writeUInt32BE(streamId, 8);
  out.writeUInt32BE(delta, 12);
  return out;
}

/**
 * Splits a byte stream into frames, whatever the chunking: a frame may arrive in many pieces and one
 * chunk may hold many frames. Malformed frames throw a ProtocolError; the session cannot continue after.
 */
export class FrameParser {
  #buffered: Buffer[] = [];
  #length = 0;
  /** Largest data frame payload accepted (the peer's frames are small; a huge length means a broken stream). */
  readonly maxPayload: number;
  /** Largest control frame payload accepted. */
  readonly maxControlPayload: number;

  /** A frame over its cap is refused as soon as its header arrives, before its bytes are buffered. */
  constructor(maxPayload = MAX_FRAME_PAYLOAD, maxControlPayload = maxPayload) {
    this.maxPayload = maxPayload;
    this.maxControlPayload = maxControlPayload;
  }

  /** Bytes held waiting for the rest of a frame. */
  get pending(): number {
    return this.#length;
  }

  /** All whole frames buffered after `chunk`. Throws at a malformed frame (frames before it are lost). */
  push(chunk: Uint8Array): Frame[] {
    return [...this.parse(chunk)];
  }

  /**
   * Yields whole frames one at a time, so a caller keeps every good frame that came before a malformed
   * one; the malformed one throws a ProtocolError.
   */
  *parse(chunk: Uint8Array): Generator<Frame, void, undefined> {
    if (chunk.byteLength) {
      this.#buffered.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this.#length += chunk.byteLength;
    }
    while (this.#length >= 8) {
      const head = this.#peek(8);
      const length = head.readUInt32BE(4) & 0xff_ffff;
      const control = ((head[0] as number) & 0x80) !== 0;
      const max = control ? this.maxControlPayload : this.maxPayload;
      if (length > max)
        throw new ProtocolError(
          `SPDY ${control ? "control" : "data"} frame of ${length} bytes exceeds the ${max}-byte limit`,
        );
      if (this.#length < 8 + length) break;
      yield decodeFrame(this.#take(8 + length));
    }
  }

  #peek(n: number): Buffer {
    const first = this.#buffered[0] as Buffer;
    if (first.length >= n) return first.subarray(0, n);
    const joined = Buffer.concat(this.#buffered);
    this.#buffered = [joined];
    return joined.subarray(0, n);
  }

  #take(n: number): Buffer {
    const first = this.#buffered[0] as Buffer;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#buffered.shift();
      else this.#buffered[0] = first.subarray(n);
    } else {
      const joined = Buffer.concat(this.#buffered);
      out = joined.subarray(0, n);
      this.#buffered = joined.length > n ? [joined.subarray(n)] : [];
    }
    this.#length -= n;
    return out;
  }
}

function malformed(what: string): ProtocolError {
  return new ProtocolError(`malformed SPDY frame: ${what}`);
}

/** Decode one whole frame (header and payload). */
export function decodeFrame(bytes: Buffer): Frame {
  if (bytes.length < 8) throw malformed("shorter than its header");
  const word = bytes.readUInt32BE(0);
  const flags = bytes[4] as number;
  const length = bytes.readUInt32BE(4) & 0xff_ffff;
  const payload = bytes.subarray(8, 8 + length);
  if (payload.length !== length) throw malformed("truncated payload");
  if ((word & 0x8000_0000) === 0) {
    const streamId = word & STREAM_ID_MASK;
    if (streamId === 0) throw malformed("data frame on stream 0");
    return { type: "data", streamId, fin: (flags & FLAG_FIN) !== 0, data: payload };
  }
  const version = (word >>> 16) & 0x7fff;
  const type = word & 0xffff;
  if (version !== SPDY_VERSION)
    throw new ProtocolError(`SPDY control frame of version ${version}; this client speaks version 3`);
  const need = (n: number, name: string) => {
    if (length < n) throw malformed(`${name} with a ${length}-byte payload`);
  };
  const streamIdAt = (offset: number) => payload.readUInt32BE(offset) & STREAM_ID_MASK;
  switch (type) {
    case FrameType.SYN_STREAM:
      need(10, "SYN_STREAM");
      return {
        type: "syn_stream",
        streamId: streamIdAt(0),
        associatedId: streamIdAt(4),
        priority: (payload[8] as number) >> 5,
        slot: payload[9] as number,
        fin: (flags & FLAG_FIN) !== 0,
        unidirectional: (flags & FLAG_UNIDIRECTIONAL) !== 0,
        headerBlock: payload.subarray(10),
      };
    case FrameType.SYN_REPLY:
    case FrameType.HEADERS:
      need(4, type === FrameType.SYN_REPLY ? "SYN_REPLY" : "HEADERS");
      return {
        type: type === FrameType.SYN_REPLY ? "syn_reply" : "headers",
        streamId: streamIdAt(0),
        fin: (flags & FLAG_FIN) !== 0,
        headerBlock: payload.subarray(4),
      };
    case FrameType.RST_STREAM:
      need(8, "RST_STREAM");
      return { type: "rst_stream", streamId: streamIdAt(0), status: payload.readUInt32BE(4) };
    case FrameType.SETTINGS: {
      need(4, "SETTINGS");
      const count = payload.readUInt32BE(0);
      if (length !== 4 + 8 * count)
        throw malformed(`SETTINGS of ${length} bytes announcing ${count} entries`);
      // SPDY/3 defines eight settings: thousands of entries are a flood, not settings.
      if (count > MAX_SETTINGS_ENTRIES) throw malformed(`SETTINGS with ${count} entries`);
      const entries: SettingsEntry[] = [];
      for (let i = 0; i < count; i++) {
        const idWord = payload.readUInt32BE(4 + 8 * i);
        entries.push({
          flags: idWord >>> 24,
          id: idWord & 0xff_ffff,
          value: payload.readUInt32BE(8 + 8 * i),
        });
      }
      return { type: "settings", clear: (flags & FLAG_CLEAR_SETTINGS) !== 0, entries };
    }
    case FrameType.PING:
      need(4, "PING");
      return { type: "ping", id: payload.readUInt32BE(0) };
    case FrameType.GOAWAY:
      need(4, "GOAWAY");
      // SPDY/2's GOAWAY had no status; read it when present.
      return {
        type: "goaway",
        lastGoodStreamId: streamIdAt(0),
        status: length >= 8 ? payload.readUInt32BE(4) : GoAwayStatus.OK,
      };
    case FrameType.WINDOW_UPDATE:
      need(8, "WINDOW_UPDATE");
      return {
        type: "window_update",
        streamId: streamIdAt(0),
        delta: payload.readUInt32BE(4) & STREAM_ID_MASK,
      };
    default:
      return { type: "unknown", controlType: type, flags, payload };
  }
}
