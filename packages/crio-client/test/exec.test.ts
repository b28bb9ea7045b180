// The channel protocol against a fake streaming server: negotiation, the v5 stdin close frame, status
// parsing, and a dropped connection ending the session with an error instead of hanging.
import type { AddressInfo } from "node:net";
import { DaemonError, UnavailableError } from "@berth/runtime-core";
import { afterAll, describe, expect, it } from "vitest";
import { type WebSocket, WebSocketServer } from "ws";
import { exitFromStatus, openPortForward, openStreamSession } from "../src/index.js";

type Handler = (ws: WebSocket) => void;
const handlers = new Map<string, Handler>();
const wss = new WebSocketServer({
  port: 0,
  host: "127.0.0.1",
  handleProtocols: (offered, req) => {
    const only = new URL(req.url ?? "/", "http://x").searchParams.get("proto");
    if (only) return offered.has(only) ? only : false;
    return offered.values().next().value ?? false;
  },
});
wss.on("connection", (ws, req) => handlers.get(new URL(req.url ?? "/", "http://x").pathname)?.(ws));
const base = () => `http://127.0.0.1:${(wss.address() as AddressInfo).port}`;
afterAll(() => wss.close());

const f = (ch: number, s: string | Uint8Array = "") =>
  Buffer.concat([Buffer.of(ch), typeof s === "string" ? Buffer.from(s) : s]);
const ok = JSON.stringify({ metadata: {}, status: "Success" });

describe("exec/attach sessions", () => {
  it("prefers v5 and sends the stdin close frame when stdin ends", async () => {
    handlers.set("/v5", (ws) => {
      const input: Buffer[] = [];
      ws.send(f(1));
      ws.on("message", (data: Buffer) => {
        if (data[0] === 0) input.push(data.subarray(1));
        if (data[0] === 255 && data[1] === 0) {
          ws.send(f(1, Buffer.concat(input).toString().toUpperCase()));
          ws.send(f(3, ok));
          ws.close(1000);
        }
      });
    });
    const s = await openStreamSession(`${base()}/v5`, { operation: "Exec", stdin: true });
    expect(s.protocol).toBe("v5.channel.k8s.io");
    expect(s.stdinClosable).toBe(true);
    const out = await s.output("hello stdin");
    expect(out).toMatchObject({ exitCode: 0 });
    expect(out.stdout.toString()).toBe("HELLO STDIN");
  });

  it("falls back to v4, demultiplexes, and reads the exit code from the Status", async () => {
    handlers.set("/v4", (ws) => {
      ws.send(f(1, "out"));
      ws.send(f(2, "err"));
      ws.send(
        f(
          3,
          JSON.stringify({
            status: "Failure",
            reason: "NonZeroExitCode",
            message: "command terminated with non-zero exit code",
            details: { causes: [{ reason: "ExitCode", message: "42" }] },
          }),
        ),
      );
      ws.close(1000);
    });
    const s = await openStreamSession(`${base()}/v4?proto=v4.channel.k8s.io`, {
      operation: "Exec",
      stdin: true,
    });
    expect(s.protocol).toBe("v4.channel.k8s.io");
    expect(s.stdinClosable).toBe(false);
    const out = await s.output();
    expect([out.stdout.toString(), out.stderr.toString(), out.exitCode]).toEqual(["out", "err", 42]);
  });

  it("a dropped connection ends the session with UnavailableError", async () => {
    handlers.set("/drop", (ws) => {
      ws.send(f(1, "partial output"));
      setTimeout(() => ws.terminate(), 50);
    });
    const s = await openStreamSession(`${base()}/drop`, { operation: "Exec", stdin: false });
    await expect(s.exit).rejects.toBeInstanceOf(UnavailableError);
  });

  it("a failure Status without an exit code is a DaemonError carrying the message", async () => {
    handlers.set("/fail", (ws) => {
      ws.send(
        f(
          3,
          JSON.stringify({ status: "Failure", message: "container not running", reason: "InternalError" }),
        ),
      );
      ws.close(1000);
    });
    const s = await openStreamSession(`${base()}/fail`, { operation: "Attach", stdin: false });
    const err = await s.exit.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DaemonError);
    expect((err as DaemonError).daemonMessage).toBe("container not running");
  });

  it("a server that picks none of the offered protocols fails the open with a typed error", async () => {
    const err = await openStreamSession(`${base()}/x?proto=v9.channel.k8s.io`, {
      operation: "Exec",
      stdin: false,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/subprotocol/);
  });

  it("a NonZeroExitCode Status without an ExitCode cause is a DaemonError", () => {
    expect(() => exitFromStatus({ status: "Failure", reason: "NonZeroExitCode" }, "Exec")).toThrow(
      DaemonError,
    );
    expect(exitFromStatus({ status: "Success" }, "Exec").exitCode).toBe(0);
  });
});

describe("port-forward stream", () => {
  it("strips the port prefix on both channels and carries data both ways", async () => {
    handlers.set("/pf", (ws) => {
      const port = Buffer.alloc(2);
      port.writeUInt16LE(8080);
      ws.send(f(0, port));
      ws.send(f(1, port));
      ws.on("message", (data: Buffer) => {
        if (data[0] !== 0) return;
        ws.send(f(0, `echo:${data.subarray(1).toString()}`));
        ws.close(1000);
      });
    });
    const s = await openPortForward(`${base()}/pf`, 8080);
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    s.write("ping");
    await new Promise((r) => s.once("end", r));
    expect(Buffer.concat(chunks).toString()).toBe("echo:ping");
  });

  it("text on the error channel fails the stream with it", async () => {
    handlers.set("/pferr", (ws) => {
      const port = Buffer.alloc(2);
      port.writeUInt16LE(9);
      ws.send(f(0, port));
      ws.send(f(1, port));
      ws.send(f(1, "failed to connect to localhost:9: connection refused"));
      ws.close(1000);
    });
    const s = await openPortForward(`${base()}/pferr`, 9);
    s.resume();
    const err = await new Promise((r) => s.once("error", r));
    expect(err).toBeInstanceOf(DaemonError);
    expect((err as Error).message).toContain("connection refused");
  });
});
