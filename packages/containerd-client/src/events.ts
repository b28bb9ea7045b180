// containerd events as an async iterable of typed objects: the envelope's Any decoded by its type URL.
import type { GrpcCallOptions } from "@berth/grpc";
import { ProtocolError } from "@berth/runtime-core";
import type { ContainerdClient } from "./client.js";
import {
  containerEvents,
  contentEvents,
  imageEvents,
  namespaceEvents,
  snapshotEvents,
  taskEvents,
} from "./generated/index.js";

/** One event from containerd's event stream (Events.Subscribe), its payload decoded by its type. */
export interface ContainerdEvent {
  /** When containerd published it; undefined when the envelope carries no timestamp. */
  timestamp: Date | undefined;
  /** The containerd namespace it happened in. */
  namespace: string;
  /** "/tasks/exit", "/containers/create"... */
  topic: string;
  /** "containerd.events.TaskExit"... */
  type: string;
  /** The decoded event, or undefined for a type this client does not know. */
  event: unknown;
  /** The payload's protobuf bytes as sent (empty when the envelope has none): all there is of a type this
   *  client does not decode. */
  raw: Uint8Array;
}

type Decoder = { decode(input: Uint8Array): unknown };

function decoders(): Map<string, Decoder> {
  const map = new Map<string, Decoder>();
  for (const mod of [
    taskEvents,
    containerEvents,
    contentEvents,
    imageEvents,
    namespaceEvents,
    snapshotEvents,
  ]) {
    for (const [name, value] of Object.entries(mod)) {
      if (value && typeof (value as Decoder).decode === "function")
        map.set(`containerd.events.${name}`, value as Decoder);
    }
  }
  return map;
}

/** An event's payload; one that does not decode as its type is the daemon's ProtocolError. */
function decode(decoder: Decoder | undefined, type: string, raw: Uint8Array): unknown {
  if (!decoder) return undefined;
  try {
    return decoder.decode(raw);
  } catch (cause) {
    throw new ProtocolError(`event ${type}: its payload does not decode (${(cause as Error).message})`, {
      operation: "Events.Subscribe",
      backend: "containerd",
      cause,
    });
  }
}

/** Subscribe to events; filters are containerd's (`topic=="/tasks/exit"`, `namespace==x`). */
export async function* subscribeEvents(
  client: ContainerdClient,
  filters: string[] = [],
  options: GrpcCallOptions = {},
): AsyncGenerator<ContainerdEvent> {
  const known = decoders();
  for await (const envelope of client.events.subscribe({ filters }, options)) {
    const type = (envelope.event?.typeUrl ?? "").replace(/^types\.containerd\.io\//, "");
    const raw = envelope.event?.value ?? new Uint8Array();
    yield {
      timestamp: envelope.timestamp,
      namespace: envelope.namespace,
      topic: envelope.topic,
      type,
      event: decode(known.get(type), type, raw),
      raw,
    };
  }
}
