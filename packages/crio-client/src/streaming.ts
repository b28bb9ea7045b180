// How exec, attach and port-forward pick their transport: SPDY first, WebSocket when asked for or when the
// server refuses the SPDY upgrade. Every URL the runtime hands out is checked before anything connects.
import { type ChannelSocket, checkStreamingUrl, openChannelSocket } from "./channel.js";
import { isUpgradeRefusal } from "./spdy/upgrade.js";
import type { StreamTransportOption } from "./transport.js";

/** What openStreaming() needs of a verb's options. */
export interface OpenStreamingOptions {
  /** The operation errors name ("Exec", "Attach", "PortForward"). */
  operation: string;
  /** "auto" (default), "spdy" or "websocket". */
  transport?: StreamTransportOption | undefined;
  /** For "auto": a fresh URL for the WebSocket attempt after the server refused SPDY (URLs are single-use). */
  fallbackUrl?: (() => Promise<string>) | undefined;
  /** Hosts besides loopback the runtime's streaming URL may name (see checkStreamingUrl). */
  streamingHosts?: readonly string[] | undefined;
  signal?: AbortSignal | undefined;
  /** Milliseconds the WebSocket upgrade may take. */
  handshakeTimeout?: number | undefined;
}

/** The two ways to open one verb's connection. */
export interface StreamingTransports<C, T> {
  /** Open over SPDY (the checked URL); a refused upgrade is a ProtocolError with the HTTP status. */
  spdy(url: string): Promise<C>;
  /** What the verb makes of the SPDY channels (outside the fallback: its errors are the caller's). */
  overSpdy(channels: C): T;
  /** The WebSocket subprotocols to offer, best first. */
  protocols: readonly string[];
  /** Adds to the checked URL before the WebSocket connects (port-forward's `port` parameter). */
  websocketUrl?(url: URL): void;
  /** What the verb makes of the open WebSocket (runs synchronously on open, see openChannelSocket). */
  overWebSocket(ws: ChannelSocket): T;
}

/**
 * Open `url` as `options.transport` says: "websocket" over WebSocket only, "spdy" over SPDY only, "auto"
 * over SPDY and, when the server refuses the SPDY upgrade, over WebSocket, at `fallbackUrl()` when given
 * (the refused upgrade spent the single-use URL), else at `url` again.
 */
export async function openStreaming<C, T>(
  url: string,
  options: OpenStreamingOptions,
  transports: StreamingTransports<C, T>,
): Promise<T> {
  const { operation } = options;
  const transport = options.transport ?? "auto";
  const checked = (target: string) => checkStreamingUrl(target, operation, options.streamingHosts);
  const overWebSocket = (target: string) => {
    const u = checked(target);
    transports.websocketUrl?.(u);
    return openChannelSocket(
      u.toString(),
      transports.protocols,
      { operation, signal: options.signal, handshakeTimeout: options.handshakeTimeout },
      (ws) => transports.overWebSocket(ws),
    );
  };
  if (transport === "websocket") return overWebSocket(url);
  let channels: C;
  try {
    channels = await transports.spdy(checked(url).toString());
  } catch (err) {
    if (transport === "spdy" || !isUpgradeRefusal(err)) throw err;
    return overWebSocket(options.fallbackUrl ? await options.fallbackUrl() : url);
  }
  return transports.overSpdy(channels);
}
