import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiVersionError, UnavailableError, ValidationError } from "@berth/runtime-core";
import * as grpc from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import {
  CriClient,
  DEFAULT_CRI_ENDPOINTS,
  endpointCandidates,
  parseCrictlConfig,
  VersionRequest,
  VersionResponse,
} from "../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "berth-crictl-"));
const crictl = (text: string) => {
  const file = join(dir, `crictl-${Math.random().toString(16).slice(2)}.yaml`);
  writeFileSync(file, text);
  return file;
};

describe("crictl.yaml", () => {
  it("reads runtime-endpoint, image-endpoint and timeout, ignoring comments and other keys", () => {
    const c = parseCrictlConfig(
      [
        "# crictl config",
        'runtime-endpoint: "unix:///run/crio/crio.sock"',
        "image-endpoint: unix:///run/img.sock  # comment",
        "timeout: 10",
        "debug: false",
      ].join("\n"),
    );
    expect(c).toEqual({
      runtimeEndpoint: "unix:///run/crio/crio.sock",
      imageEndpoint: "unix:///run/img.sock",
      timeout: 10,
    });
  });

  it("rejects a timeout that is not a number", () => {
    expect(() => parseCrictlConfig("timeout: soon")).toThrow(ValidationError);
  });
});

describe("endpoint precedence", () => {
  const file = crictl(
    "runtime-endpoint: unix:///from/crictl.sock\nimage-endpoint: unix:///img.sock\ntimeout: 3\n",
  );

  it("explicit option, then env, then crictl.yaml, then the defaults in crictl's order", () => {
    expect(
      endpointCandidates({ endpoint: "unix:///opt.sock", env: {}, crictlConfig: file }).candidates,
    ).toEqual([{ endpoint: "unix:///opt.sock", imageEndpoint: "unix:///img.sock", source: "option" }]);
    const env = {
      CONTAINER_RUNTIME_ENDPOINT: "unix:///env.sock",
      IMAGE_SERVICE_ENDPOINT: "unix:///envimg.sock",
    };
    expect(endpointCandidates({ env, crictlConfig: file }).candidates).toEqual([
      { endpoint: "unix:///env.sock", imageEndpoint: "unix:///envimg.sock", source: "env" },
    ]);
    expect(endpointCandidates({ env: {}, crictlConfig: file }).candidates[0]).toMatchObject({
      endpoint: "unix:///from/crictl.sock",
      source: "crictl.yaml",
    });
    const defaults = endpointCandidates({ env: {}, crictlConfig: join(dir, "absent.yaml") }).candidates;
    expect(defaults.map((c) => c.endpoint)).toEqual([...DEFAULT_CRI_ENDPOINTS]);
    expect(defaults[0]?.endpoint).toBe("unix:///var/run/crio/crio.sock");
  });

  it("CRI_CONFIG_FILE names crictl.yaml; fromEnv takes its endpoint and timeout", () => {
    const c = CriClient.fromEnv({ CRI_CONFIG_FILE: file });
    try {
      expect(c.endpoint).toBe("unix:///from/crictl.sock");
      expect(c.imageEndpoint).toBe("unix:///img.sock");
      expect(c.defaultTimeout).toBe(3000);
    } finally {
      c.close();
    }
  });
});

describe("connect()", () => {
  const servers: Server[] = [];
  afterAll(() => {
    for (const s of servers) s.close();
  });

  it("fails with UnavailableError listing each endpoint tried and why", async () => {
    const notSocket = join(dir, "plain-file");
    writeFileSync(notSocket, "");
    const silent = join(dir, "silent.sock");
    // Accepts and hangs up: not a gRPC server.
    const server = createServer((s) => s.destroy());
    servers.push(server);
    await new Promise<void>((r) => server.listen(silent, r));
    for (const endpoint of [`unix://${join(dir, "missing.sock")}`, notSocket, `unix://${silent}`]) {
      const err = await CriClient.connect({ endpoint, env: {}, probeTimeout: 1000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnavailableError);
      expect((err as Error).message).toContain(endpoint);
    }
    const err = await CriClient.connect({ endpoint: `unix://${join(dir, "missing.sock")}`, env: {} }).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).toMatch(/missing\.sock \(option\): ENOENT/);
  });

  it("names the versions when the runtime answers only runtime.v1alpha2", async () => {
    const socket = join(dir, "v1alpha2.sock");
    const server = new grpc.Server();
    const version = {
      path: "/runtime.v1alpha2.RuntimeService/Version",
      requestStream: false,
      responseStream: false,
      requestSerialize: (v: VersionRequest) => Buffer.from(VersionRequest.encode(v).finish()),
      requestDeserialize: (b: Buffer) => VersionRequest.decode(b),
      responseSerialize: (v: VersionResponse) => Buffer.from(VersionResponse.encode(v).finish()),
      responseDeserialize: (b: Buffer) => VersionResponse.decode(b),
    };
    server.addService({ Version: version } as grpc.ServiceDefinition, {
      Version: (_call: unknown, cb: grpc.sendUnaryData<VersionResponse>) =>
        cb(null, {
          version: "0.1.0",
          runtimeName: "old-runtime",
          runtimeVersion: "1.4.0",
          runtimeApiVersion: "v1alpha2",
        }),
    });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (e) =>
        e ? reject(e) : resolve(),
      ),
    );
    try {
      const err = await CriClient.connect({ endpoint: `unix://${socket}`, env: {} }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiVersionError);
      expect((err as ApiVersionError).required).toBe("v1");
      expect((err as ApiVersionError).actual).toBe("v1alpha2");
      expect((err as Error).message).toMatch(/v1alpha2.*old-runtime 1\.4\.0.*runtime\.v1/);
    } finally {
      server.forceShutdown();
    }
  });
});
