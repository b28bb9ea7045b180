// containerd's Streaming service (1.7+, 2.x): a bidirectional stream of Anys that the client opens and
// names, which a later call (a Transfer) refers to by that name. The daemon sends a transfer's progress on
// one and asks for registry credentials on another. The first message names the stream (StreamInit); the
// daemon's first answer says it is registered. Opened under a lease, the stream is the lease's: a stream
// no call ever closes is dropped with the lease.
import { randomBytes } from "node:crypto";
import type { DeepPartial } from "@berth/grpc";
import { ProtocolError } from "@berth/runtime-core";
import type { ContainerdClient } from "./client.js";
import { StreamInit } from "./generated/github.com/containerd/containerd/api/services/streaming/v1/streaming.js";
import type { Any } from "./generated/google/protobuf/any.js";
import { AsyncQueue } from "./queue.js";

/** The type URL of a message in an Any, as containerd's typeurl names it: the message's full proto name. */
export const STREAM_INIT_TYPE = "containerd.services.streaming.v1.StreamInit";

/** The shape ts-proto gives every message: enough to pack one into an Any and read one out of it. */
export interface AnyMessage<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
  fromPartial(object: never): T;
}

/** `message` packed as an Any under `typeUrl`. */
export function packAny<T>(typeUrl: string, type: AnyMessage<T>, message: DeepPartial<T>): Any {
  const bytes = type.encode(type.fromPartial(message as never)).finish();
  return { typeUrl, value: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

/** The message in an Any that must be of `typeUrl`: another type, or bytes that do not decode, is a
 *  ProtocolError naming `where`. */
export function unpackAny<T>(any: Any, typeUrl: string, type: AnyMessage<T>, where: string): T {
  if (any.typeUrl !== typeUrl) {
    throw new ProtocolError(`${where}: the daemon sent a ${JSON.stringify(any.typeUrl)}, not a ${typeUrl}`, {
      operation: where,
      backend: "containerd",
    });
  }
  try {
    return type.decode(any.value);
  } catch (err) {
    throw new ProtocolError(`${where}: the daemon sent a ${typeUrl} that does not decode`, {
      operation: where,
      backend: "containerd",
      cause: err,
    });
  }
}

export interface DaemonStream {
  /** The name other calls refer to the stream by. */
  readonly id: string;
  /** The daemon's messages after its acknowledgement; done when the daemon ends the stream. */
  readonly messages: AsyncIterator<Any>;
  send(message: Any): void;
  /** End the call (the daemon's side sees it cancelled). */
  close(): void;
}

/** A stream name as containerd's own client makes them: the purpose, then something unique. */
function streamId(purpose: string): string {
  return `${purpose}-${randomBytes(9).toString("base64url")}`;
}

/**
 * Open and name a stream, and wait for the daemon to acknowledge it. `signal` cancels the call (so the
 * stream) whenever it aborts, not only while opening. containerd 1.6 has no Streaming service: its
 * UNIMPLEMENTED answer is an UnsupportedError.
 */
export async function openStream(
  client: ContainerdClient,
  purpose: string,
  signal: AbortSignal,
): Promise<DaemonStream> {
  const id = streamId(purpose);
  const out = new AsyncQueue<Any>();
  out.push(packAny(STREAM_INIT_TYPE, StreamInit, { id }));
  const call = client.streaming.stream(out, { signal });
  const messages = call[Symbol.asyncIterator]();
  const close = () => {
    out.close();
    call.cancel();
  };
  try {
    const ack = await messages.next();
    if (ack.done) {
      throw new ProtocolError(`Streaming.Stream: the daemon ended stream ${id} without acknowledging it`, {
        operation: "Streaming.Stream",
        backend: "containerd",
      });
    }
  } catch (err) {
    close();
    throw err;
  }
  return { id, messages, send: (m) => out.push(m), close };
}
