// What every set of channels over one SPDY connection does with the connection itself.
import type { SpdyConnection } from "./connection.js";

/** The connection-wide part of exec's and port-forward's SPDY channels: flow control and close. */
export abstract class SpdyConnectionChannels {
  readonly transport = "spdy" as const;

  constructor(protected readonly conn: SpdyConnection) {}

  /** Stop reading from the server while the consumer lags. */
  pause(): void {
    this.conn.pause();
  }

  /** Read from the server again. */
  resume(): void {
    this.conn.resume();
  }

  /** Close the connection. */
  close(): void {
    this.conn.close();
  }
}
