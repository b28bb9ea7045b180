// GrpcChannel.service()'s options against a real grpc-js server on a unix socket: the default deadline
// (unary calls only, not the untimed ones, a call's own timeout first) and mapError (every failure but
// an abort goes through it, on unary calls and streams alike).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AbortedError,
  type BerthError,
  DaemonError,
  TimeoutError,
  UnauthorizedError,
} from "@berth/runtime-core";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GrpcChannel, type ServiceOptions } from "../src/index.js";
import type { ServiceDefinition } from "../src/types.js";
import { Bytes, failure } from "./support.js";

const unary = (name: string) =>
  ({ name, requestType: Bytes, requestStream: false, responseType: Bytes, responseStream: false }) as const;
const Test = {
  name: "Test",
  fullName: "test.Test",
  methods: {
    hang: unary("Hang"),
    wait: unary("Wait"),
    fail: unary("Fail"),
    watch: {
      name: "Watch",
      requestType: Bytes,
      requestStream: false,
      responseType: Bytes,
      responseStream: true,
    },
  },
} as const satisfies ServiceDefinition;

let dir: string;
let server: grpc.Server;
let address: string;
const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const def = (name: string, responseStream: boolean) => ({
  path: `/test.Test/${name}`,
  requestStream: false,
  responseStream,
  requestSerialize: raw.serialize,
  requestDeserialize: raw.deserialize,
  responseSerialize: raw.serialize,
  responseDeserialize: raw.deserialize,
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "berth-grpc-svc-"));
  address = join(dir, "grpc.sock");
  server = new grpc.Server();
  const never = () => {};
  server.addService(
    {
      Hang: def("Hang", false),
      Wait: def("Wait", false),
      Fail: def("Fail", false),
      Watch: def("Watch", true),
    },
    {
      // Answers only after the delay the request names (milliseconds as text), else never.
      Hang: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        const ms = Number(call.request.toString() || "NaN");
        if (Number.isFinite(ms)) setTimeout(() => cb(null, Buffer.from("late")), ms);
      },
      Wait: never,
      Fail: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
        cb({ code: grpc.status.UNKNOWN, details: "pull failed: 401 Unauthorized" }),
      // One message after 300 ms, then the status the request names ("fail") or the end.
      Watch: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        setTimeout(() => {
          call.write(Buffer.from("one"));
          if (call.request.toString() === "fail") {
            call.emit("error", { code: grpc.status.UNKNOWN, details: "401 Unauthorized" });
          } else call.end();
        }, 300);
      },
    },
  );
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${address}`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
});

afterAll(() => {
  server.forceShutdown();
  rmSync(dir, { recursive: true, force: true });
});

function client(options: ServiceOptions) {
  const channel = new GrpcChannel({ address, backend: "test" });
  return { channel, svc: channel.service(Test, options) };
}

async function collect(stream: AsyncIterable<Buffer>): Promise<string[]> {
  const out: string[] = [];
  for await (const m of stream) out.push(m.toString());
  return out;
}

describe("GrpcChannel.service options", () => {
  it("a unary call without a timeout gets the service's default deadline", async () => {
    const { channel, svc } = client({ timeout: 150 });
    const t0 = Date.now();
    const err = await failure(svc.hang(Buffer.from("5000") as never));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(Date.now() - t0).toBeLessThan(4000);
    channel.close();
  });

  it("a call's own timeout wins over the default", async () => {
    const { channel, svc } = client({ timeout: 100 });
    const res = await svc.hang(Buffer.from("300") as never, { timeout: 10_000 });
    expect(Buffer.from(res as Uint8Array).toString()).toBe("late");
    channel.close();
  });

  it("an untimed method gets no default deadline; an abort still ends it", async () => {
    const { channel, svc } = client({ timeout: 100, untimed: ["wait"] });
    const ac = new AbortController();
    const call = svc.wait(Buffer.alloc(0) as never, { signal: ac.signal });
    const outcome = await Promise.race([
      call.then(
        () => "answered",
        (e: unknown) => e,
      ),
      new Promise((r) => setTimeout(() => r("still waiting"), 600)),
    ]);
    expect(outcome).toBe("still waiting");
    ac.abort();
    expect(await failure(call)).toBeInstanceOf(AbortedError);
    channel.close();
  });

  it("a server stream gets no default deadline", async () => {
    const { channel, svc } = client({ timeout: 50 });
    expect(await collect(svc.watch(Buffer.from("end") as never) as AsyncIterable<Buffer>)).toEqual(["one"]);
    channel.close();
  });

  it("without options: no deadline, the status's own error", async () => {
    const { channel, svc } = client({});
    const res = await svc.hang(Buffer.from("300") as never);
    expect(Buffer.from(res as Uint8Array).toString()).toBe("late");
    const err = await failure(svc.fail(Buffer.alloc(0) as never));
    expect(err).toBeInstanceOf(DaemonError);
    expect((err as BerthError).daemonMessage).toContain("401 Unauthorized");
    expect(err).not.toBeInstanceOf(UnauthorizedError);
    channel.close();
  });

  it("mapError refines the failures of unary calls and streams, never an abort", async () => {
    const seen: BerthError[] = [];
    const mapError = (e: BerthError) => {
      seen.push(e);
      return /\b401\b/.test(e.daemonMessage ?? "")
        ? new UnauthorizedError(e.message, { operation: e.operation, backend: e.backend, cause: e })
        : e;
    };
    const { channel, svc } = client({ mapError, untimed: ["wait"] });
    const unaryErr = await failure(svc.fail(Buffer.alloc(0) as never));
    expect(unaryErr).toBeInstanceOf(UnauthorizedError);
    expect((unaryErr as BerthError).operation).toBe("Test.Fail");
    const got: string[] = [];
    const streamErr = await failure(
      (async () => {
        for await (const m of svc.watch(Buffer.from("fail") as never) as AsyncIterable<Buffer>)
          got.push(m.toString());
      })(),
    );
    expect(got).toEqual(["one"]);
    expect(streamErr).toBeInstanceOf(UnauthorizedError);
    const ac = new AbortController();
    const waiting = svc.wait(Buffer.alloc(0) as never, { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    expect(await failure(waiting)).toBeInstanceOf(AbortedError);
    expect(seen.map((e) => e.operation)).toEqual(["Test.Fail", "Test.Watch"]);
    channel.close();
  });
});
