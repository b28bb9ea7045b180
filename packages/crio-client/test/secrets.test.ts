// Credentials never leak into what a failed PullImage leaves behind: a fixture ImageService on a unix
// socket receives the AuthConfig with a unique password and fails the pull the ways CRI runtimes do; the
// credential lookup in front of it fails too. The error (message, stack, causes, inspected, serialized)
// and everything printed meanwhile are grepped for the password in each form it travels in.
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AbortedError,
  BerthError,
  DaemonError,
  DOCKER_HUB_AUTH_SERVER,
  type RegistryCredentials,
  TimeoutError,
  UnauthorizedError,
  UnavailableError,
} from "@berth/runtime-core";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeSecret, SecretScan } from "../../../test/support/secret-scan.js";
import { CriClient, CriRuntime, PullImageRequest, PullImageResponse } from "../src/index.js";

type Answer = (
  call: grpc.ServerUnaryCall<PullImageRequest, PullImageResponse>,
  cb: grpc.sendUnaryData<PullImageResponse>,
) => void;

let root: string;
let socket: string;
const server = new grpc.Server();
/** How the fixture runtime answers PullImage in the current case. */
let answer: Answer = (_call, cb) => cb(null, { imageRef: "sha256:0" });
const received: PullImageRequest[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "berth-secrets-cri-"));
  socket = join(root, "cri.sock");
  const pullImage = {
    path: "/runtime.v1.ImageService/PullImage",
    requestStream: false,
    responseStream: false,
    requestSerialize: (v: PullImageRequest) => Buffer.from(PullImageRequest.encode(v).finish()),
    requestDeserialize: (b: Buffer) => PullImageRequest.decode(b),
    responseSerialize: (v: PullImageResponse) => Buffer.from(PullImageResponse.encode(v).finish()),
    responseDeserialize: (b: Buffer) => PullImageResponse.decode(b),
  };
  server.addService({ PullImage: pullImage } as grpc.ServiceDefinition, {
    PullImage: (
      call: grpc.ServerUnaryCall<PullImageRequest, PullImageResponse>,
      cb: grpc.sendUnaryData<PullImageResponse>,
    ) => {
      received.push(call.request);
      answer(call, cb);
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (e) =>
      e ? reject(e) : resolve(),
    ),
  );
});
afterAll(async () => {
  server.forceShutdown();
  await rm(root, { recursive: true, force: true });
});

const fail =
  (code: grpc.status, details: string): Answer =>
  (_call, cb) =>
    cb({ code, details, name: "Error", message: details });

describe("secrets: crio-client pullImage auth", () => {
  it("a PullImage the runtime refuses or breaks never carries the password", async () => {
    const s = makeSecret("cri");
    const scan = new SecretScan([s]);
    const creds: RegistryCredentials = { username: s.user, password: s.password, serverAddress: "r.example" };
    const cri = new CriClient({ endpoint: `unix://${socket}` });
    try {
      const cases: Array<
        [name: string, answer: Answer, expected: abstract new (...a: never[]) => BerthError, timeout?: number]
      > = [
        [
          "containerd's UNKNOWN 401",
          fail(
            grpc.status.UNKNOWN,
            'failed to pull and unpack image "r.example/app:1": failed to resolve reference "r.example/app:1": unexpected status from HEAD request to https://r.example/v2/app/manifests/1: 401 Unauthorized',
          ),
          UnauthorizedError,
        ],
        [
          "CRI-O's UNKNOWN auth error",
          fail(
            grpc.status.UNKNOWN,
            "initializing source docker://r.example/app:1: reading manifest 1 in r.example/app: unauthorized: authentication required",
          ),
          UnauthorizedError,
        ],
        [
          "UNAUTHENTICATED",
          fail(grpc.status.UNAUTHENTICATED, "registry refused the credentials"),
          UnauthorizedError,
        ],
        ["INTERNAL", fail(grpc.status.INTERNAL, "pull failed: disk full"), DaemonError],
        ["hangs past the deadline", () => {}, TimeoutError, 300],
      ];
      for (const [name, a, expected, timeout] of cases) {
        answer = a;
        received.length = 0;
        const err = await scan.failing(`pullImage, ${name}`, () =>
          cri.pullImage("r.example/app:1", { auth: creds, ...(timeout ? { timeout } : {}) }),
        );
        expect(err, name).toBeInstanceOf(expected);
        // The credentials did reach the runtime: this path is the one that carries them.
        expect(received[0]?.auth?.password, name).toBe(s.password);
      }
      answer = () => {};
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error("caller gave up")), 100);
      const aborted = await scan.failing("pullImage aborted", () =>
        cri.pullImage("r.example/app:1", { auth: creds, signal: controller.signal }),
      );
      expect(aborted).toBeInstanceOf(AbortedError);
    } finally {
      cri.close();
    }
    const gone = new CriClient({ endpoint: `unix://${join(root, "missing.sock")}` });
    try {
      const err = await scan.failing("pullImage, no runtime", () =>
        gone.pullImage("r.example/app:1", { auth: creds, timeout: 2_000 }),
      );
      expect(err).toBeInstanceOf(BerthError);
    } finally {
      gone.close();
    }
    scan.report("crio-client pullImage (AuthConfig)");
  }, 30_000);

  it("credentials looked up from config.json or a failing helper never show in the error", async () => {
    const s = makeSecret("cri-config");
    const scan = new SecretScan([s]);
    const bin = join(root, "bin");
    await mkdir(bin, { recursive: true });
    const env = { PATH: `${bin}:/usr/bin:/bin`, HOME: join(root, "nohome") };
    const auth = Buffer.from(`${s.user}:${s.password}`).toString("base64");
    const configDir = async (name: string, config: unknown) => {
      const dir = join(root, name);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, "config.json"), JSON.stringify(config));
      return dir;
    };
    const cri = new CriClient({ endpoint: `unix://${socket}` });
    try {
      answer = fail(grpc.status.UNKNOWN, "failed to resolve reference: 401 Unauthorized");
      received.length = 0;
      const fromAuths = await configDir("auths", { auths: { "r.example": { auth } } });
      const refused = await scan.failing("pullImage, auths in config.json, refused", () =>
        cri.pullImage("r.example/app:1", { credentials: { configDir: fromAuths, env } }),
      );
      expect(refused).toBeInstanceOf(UnauthorizedError);
      expect(received[0]?.auth?.password).toBe(s.password);

      const reply = JSON.stringify({ ServerURL: "r.example", Username: s.user, Secret: s.password });
      await writeFile(
        join(bin, "docker-credential-leaky"),
        `#!/bin/sh\ncat >/dev/null\necho '${reply}'\nexit 1\n`,
      );
      await chmod(join(bin, "docker-credential-leaky"), 0o755);
      const leaky = await configDir("leaky", { credsStore: "leaky", auths: { "r.example": { auth } } });
      const failed = await scan.failing("pullImage, credsStore fails after printing", () =>
        cri.pullImage("r.example/app:1", { credentials: { configDir: leaky, env } }),
      );
      expect(failed).toBeInstanceOf(UnauthorizedError);
    } finally {
      cri.close();
    }
    const gone = new CriClient({ endpoint: `unix://${join(root, "missing.sock")}` });
    try {
      const fromAuths = await configDir("auths2", { auths: { "r.example": { auth } } });
      const err = await scan.failing("pullImage, auths in config.json, no runtime", () =>
        gone.pullImage("r.example/app:1", { credentials: { configDir: fromAuths, env }, timeout: 2_000 }),
      );
      expect(err).toBeInstanceOf(UnavailableError);
    } finally {
      gone.close();
    }
    scan.report("crio-client pullImage (config.json, credential helper)");
  }, 30_000);
});

describe("credentials go only to the registry they name", () => {
  it("pullImage and CriRuntime.pull refuse another registry's credentials, sending nothing", async () => {
    const s = makeSecret("cri-scope");
    const cri = new CriClient({ endpoint: `unix://${socket}` });
    const runtime = new CriRuntime(cri);
    answer = (_call, cb) => cb(null, { imageRef: "sha256:0" });
    try {
      for (const [image, serverAddress] of [
        ["evil.example/app:1", DOCKER_HUB_AUTH_SERVER],
        ["evil.example/app:1", "ghcr.io"],
        ["busybox", "ghcr.io"],
        ["127.0.0.1:5001/app", "127.0.0.1:5000"],
      ] as const) {
        const auth = { username: s.user, password: s.password, serverAddress };
        for (const [name, call] of [
          ["pullImage", () => cri.pullImage(image, { auth })],
          ["pullImage (AuthConfig)", () => cri.pullImage(image, { auth: { ...auth, auth: "eDp5" } })],
          ["CriRuntime.pull", () => runtime.pull(image, { auth })],
        ] as const) {
          received.length = 0;
          const err = await call().catch((e: unknown) => e);
          expect(err, `${name} ${image} with ${serverAddress}`).toBeInstanceOf(UnauthorizedError);
          expect((err as Error).message).toMatch(/not sent to another registry/);
          expect((err as Error).message).not.toContain(s.password);
          expect(received, `${name} ${image} with ${serverAddress}`).toEqual([]);
        }
      }
      // Their own registry's image gets them; without serverAddress they are the image's registry's.
      for (const [image, auth, serverAddress] of [
        ["busybox", { serverAddress: "docker.io" }, "https://registry-1.docker.io"],
        ["127.0.0.1:5001/app", { serverAddress: "127.0.0.1:5001" }, "https://127.0.0.1:5001"],
        ["127.0.0.1:5001/app", {}, "https://127.0.0.1:5001"],
        ["busybox", {}, "https://registry-1.docker.io"],
      ] as const) {
        received.length = 0;
        await runtime.pull(image, {
          auth: { username: s.user, password: s.password, ...auth } as RegistryCredentials,
        });
        expect(received[0]?.auth, image).toMatchObject({ password: s.password, serverAddress });
      }
    } finally {
      cri.close();
    }
  });
});
