// ExecSync's client deadline against a runtime that never answers.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TimeoutError } from "@berth/runtime-core";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { CriClient, ExecSyncRequest, ExecSyncResponse } from "../src/index.js";

const socket = join(mkdtempSync(join(tmpdir(), "berth-hung-")), "cri.sock");
const server = new grpc.Server();
const seen: ExecSyncRequest[] = [];

beforeAll(async () => {
  const execSync = {
    path: "/runtime.v1.RuntimeService/ExecSync",
    requestStream: false,
    responseStream: false,
    requestSerialize: (v: ExecSyncRequest) => Buffer.from(ExecSyncRequest.encode(v).finish()),
    requestDeserialize: (b: Buffer) => ExecSyncRequest.decode(b),
    responseSerialize: (v: ExecSyncResponse) => Buffer.from(ExecSyncResponse.encode(v).finish()),
    responseDeserialize: (b: Buffer) => ExecSyncResponse.decode(b),
  };
  server.addService({ ExecSync: execSync } as grpc.ServiceDefinition, {
    // A hung runtime: records the request, never answers.
    ExecSync: (call: grpc.ServerUnaryCall<ExecSyncRequest, ExecSyncResponse>) => {
      seen.push(call.request);
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (e) =>
      e ? reject(e) : resolve(),
    ),
  );
});
afterAll(() => server.forceShutdown());

it("a hung runtime ends execSync with a TimeoutError at timeout + margin", async () => {
  const cri = new CriClient({ endpoint: `unix://${socket}` });
  try {
    const t0 = Date.now();
    await expect(cri.execSync("c1", ["sleep", "30"], { timeout: 300, margin: 200 })).rejects.toBeInstanceOf(
      TimeoutError,
    );
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(450);
    expect(took).toBeLessThan(1500);
    // The runtime is told the timeout too, in whole seconds, rounded up.
    expect(seen[0]?.timeout).toBe(1n);
    expect(seen[0]?.cmd).toEqual(["sleep", "30"]);
  } finally {
    cri.close();
  }
});
