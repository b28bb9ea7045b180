// The typed CRI verbs, streaming, logs and pulls against containerd's CRI plugin (runtime.v1). CRI-O is
// not packaged by Debian, so CRI runs against containerd; CRI-O's HTTP endpoints have a fixture test.
// Everything created carries this run's label and is removed in afterAll; the daemons are shared.
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { get } from "node:http";
import { hostname } from "node:os";
import { join } from "node:path";
import type { DeepPartial } from "@berth/grpc";
import {
  AbortedError,
  NotFoundError,
  TimeoutError,
  UnauthorizedError,
  UnsupportedError,
} from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { daemonSet } from "../../../test/support/daemon-set.js";
import {
  CgroupDriver,
  ContainerState,
  CriClient,
  type CriLogEntry,
  NamespaceMode,
  type PodSandboxConfig,
  PodSandboxState,
  Protocol,
} from "../src/index.js";

const env = process.env;
const IMAGE = env.BERTH_TEST_IMAGE ?? "127.0.0.1:5000/busybox:latest";
const RUN = `berth-crio-${process.pid}-${randomBytes(3).toString("hex")}`;
const LABELS = { "berth.run": RUN };
const LOG_ROOT = join(env.BERTH_CRI_LOG_DIR ?? "/tmp", RUN);
const HOST_PORT = 20_000 + Math.floor(Math.random() * 40_000);
const BIG = 40 * 1024;

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => resolve(body));
    }).on("error", reject);
  });
}

function sandboxConfig(name: string, hostNetwork: boolean): DeepPartial<PodSandboxConfig> {
  const uid = `${RUN}-${name}`;
  const logDirectory = join(LOG_ROOT, name);
  mkdirSync(logDirectory, { recursive: true });
  return {
    metadata: { name: `${RUN}-${name}`, uid, namespace: "berth-test" },
    hostname: hostNetwork ? "" : name,
    logDirectory,
    labels: LABELS,
    portMappings: hostNetwork
      ? []
      : [{ protocol: Protocol.TCP, containerPort: 8080, hostPort: HOST_PORT, hostIp: "127.0.0.1" }],
    linux: {
      securityContext: {
        namespaceOptions: {
          network: hostNetwork ? NamespaceMode.NODE : NamespaceMode.POD,
          pid: NamespaceMode.CONTAINER,
          ipc: NamespaceMode.POD,
        },
      },
    },
  };
}

const cri = CriClient.fromEnv();
let pod = "";
let main = "";

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  await cri.pullImage(IMAGE, { auth: false });
  pod = await cri.runPodSandbox(sandboxConfig("bridge", false));
  main = await cri.createContainer(pod, {
    metadata: { name: "main" },
    image: { image: IMAGE },
    labels: LABELS,
    command: [
      "sh",
      "-c",
      `httpd -p 8080 -h /etc; head -c ${BIG} /dev/zero | tr '\\0' x; echo; echo big-done; ` +
        "echo to-stderr >&2; while true; do echo tick; sleep 1; done",
    ],
  });
  await cri.startContainer(main);
}, 120_000);

afterAll(async () => {
  try {
    for (const c of await cri.listContainers({ labelSelector: LABELS })) {
      await cri.stopContainer(c.id, 0).catch(() => {});
      await cri.removeContainer(c.id).catch(() => {});
    }
    for (const p of await cri.listPodSandbox({ labelSelector: LABELS })) {
      await cri.stopPodSandbox(p.id).catch(() => {});
      await cri.removePodSandbox(p.id).catch(() => {});
    }
  } finally {
    cri.close();
    rmSync(LOG_ROOT, { recursive: true, force: true });
  }
}, 120_000);

describe("endpoint and version", () => {
  it("connect() finds the runtime and checks it serves runtime.v1", async () => {
    const c = await CriClient.connect({ env });
    try {
      expect(c.endpoint).toBe(env.CONTAINER_RUNTIME_ENDPOINT);
      const v = await c.version();
      expect(v.runtimeName).toBe("containerd");
      expect(v.runtimeApiVersion).toBe("v1");
    } finally {
      c.close();
    }
  });

  it("status, runtimeConfig and imageFsInfo answer", async () => {
    const s = await cri.status();
    expect(s.status?.conditions.find((c) => c.type === "RuntimeReady")?.status).toBe(true);
    const fs = await cri.imageFsInfo();
    expect(fs.imageFilesystems.length).toBeGreaterThan(0);
    // containerd samples usage every few seconds, so a freshly started daemon may still report 0.
    expect(fs.imageFilesystems[0]?.fsId?.mountpoint).toMatch(/^\//);
    expect(typeof fs.imageFilesystems[0]?.usedBytes?.value).toBe("bigint");
    if (daemonSet.criEvents) {
      // containerd 2.x has RuntimeConfig (Kubernetes 1.28): the harness runs runc with cgroupfs.
      expect((await cri.runtimeConfig()).linux?.cgroupDriver).toBe(CgroupDriver.CGROUPFS);
    } else {
      // containerd 1.6 predates RuntimeConfig: it answers UNIMPLEMENTED.
      await expect(cri.runtimeConfig()).rejects.toBeInstanceOf(UnsupportedError);
    }
  });
});

describe("container events", () => {
  it.runIf(daemonSet.criEvents)("GetContainerEvents reports a container created in a pod", async () => {
    const ac = new AbortController();
    const seen = new Set<string>();
    const watching = (async () => {
      for await (const e of cri.getContainerEvents({ signal: ac.signal })) seen.add(e.containerId);
    })().catch(() => {});
    // The stream is open once the runtime has the request; a container made right after shows up in it.
    await new Promise((r) => setTimeout(r, 200));
    const created = await cri.createContainer(pod, {
      metadata: { name: "evented" },
      image: { image: IMAGE },
      labels: LABELS,
      command: ["true"],
    });
    try {
      await until("the container's event", async () => (seen.has(created) ? true : undefined), 20_000);
    } finally {
      ac.abort();
      await watching;
      await cri.removeContainer(created);
    }
  });

  it.skipIf(daemonSet.criEvents)(
    "containerd 1.6 has no GetContainerEvents (1.7 added it): UnsupportedError, not a hang",
    async () => {
      const events = cri.getContainerEvents({ timeout: 5_000 });
      const first = (async () => {
        for await (const e of events) return e;
        return undefined;
      })();
      await expect(first).rejects.toBeInstanceOf(UnsupportedError);
    },
  );
});

describe("pod on the bridge network", () => {
  it(`is ready with an IP on ${daemonSet.criSubnet}.0/24 and listed under the run's label`, async () => {
    const { status } = await cri.podSandboxStatus(pod);
    expect(status?.state).toBe(PodSandboxState.SANDBOX_READY);
    expect(status?.network?.ip?.startsWith(`${daemonSet.criSubnet}.`)).toBe(true);
    const pods = await cri.listPodSandbox({ labelSelector: LABELS });
    expect(pods.map((p) => p.id)).toContain(pod);
  });

  it("container runs, with status and a listing", async () => {
    const { status } = await cri.containerStatus(main);
    expect(status?.state).toBe(ContainerState.CONTAINER_RUNNING);
    expect(status?.labels).toMatchObject(LABELS);
    const list = await cri.listContainers({ podSandboxId: pod });
    expect(list.map((c) => c.id)).toEqual([main]);
  });

  it("serves the host port mapping", async () => {
    const body = await until("httpd on the host port", () =>
      httpGet(`http://127.0.0.1:${HOST_PORT}/hostname`).catch(() => undefined),
    );
    expect(body.trim()).toBe("bridge");
  });

  it("execSync returns output and exit code", async () => {
    const r = await cri.execSync(main, ["sh", "-c", "echo out; echo err >&2; exit 7"], { timeout: 10_000 });
    expect(r.stdout.toString()).toBe("out\n");
    expect(r.stderr.toString()).toBe("err\n");
    expect(r.exitCode).toBe(7);
  });

  it("execSync's timeout really bounds the command", async () => {
    const t0 = Date.now();
    await expect(cri.execSync(main, ["sleep", "30"], { timeout: 1000 })).rejects.toBeInstanceOf(TimeoutError);
    expect(Date.now() - t0).toBeLessThan(3_500);
  });

  it("unknown ids are NotFoundError", async () => {
    await expect(cri.containerStatus("berth-no-such-container")).rejects.toBeInstanceOf(NotFoundError);
    await expect(cri.podSandboxStatus("berth-no-such-pod")).rejects.toBeInstanceOf(NotFoundError);
    await expect(cri.execSync("berth-no-such-container", ["true"])).rejects.toBeInstanceOf(NotFoundError);
    // The CRI says stopping is idempotent: containerd 2.x answers OK for an unknown id, 1.6 NotFound.
    const stop = cri.stopContainer("berth-no-such-container");
    if (daemonSet.criEvents) await stop;
    else await expect(stop).rejects.toBeInstanceOf(NotFoundError);
  });

  it("streaming exec feeds stdin and reports stdout, stderr and the exit code", async () => {
    const session = await cri.exec(main, ["sh", "-c", "read line; echo got:$line; echo warn >&2; exit 3"], {
      stdin: true,
    });
    // The default transport is SPDY where the runtime accepts it (containerd 1.6 does): stdin can end.
    expect(session.protocol).toBe("v4.channel.k8s.io");
    expect(session.transport).toBe("spdy");
    expect(session.stdinClosable).toBe(true);
    const out = await session.output("hello\n");
    expect(out.stdout.toString()).toBe("got:hello\n");
    expect(out.stderr.toString()).toBe("warn\n");
    expect(out.exitCode).toBe(3);
  });

  it("WebSocket exec still works, without a stdin close (containerd 1.6 offers v4 only)", async () => {
    const session = await cri.exec(main, ["sh", "-c", "read line; echo ws:$line"], {
      stdin: true,
      transport: "websocket",
    });
    expect(session.transport).toBe("websocket");
    expect(session.protocol).toBe("v4.channel.k8s.io");
    expect(session.stdinClosable).toBe(false);
    const out = await session.output("hi\n");
    expect(out.stdout.toString()).toBe("ws:hi\n");
    expect(out.exitCode).toBe(0);
  });

  it("streaming exec is abortable", async () => {
    const ac = new AbortController();
    const session = await cri.exec(main, ["sleep", "30"], { signal: ac.signal });
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 200);
    await expect(session.exit).rejects.toBeInstanceOf(AbortedError);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it("streaming exec's timeout closes it with a TimeoutError", async () => {
    const session = await cri.exec(main, ["sleep", "30"], { timeout: 500 });
    await expect(session.exit).rejects.toBeInstanceOf(TimeoutError);
  });

  it("port-forwards to httpd in the pod", async () => {
    const stream = await cri.portForward(pod, 8080);
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.write("GET /hostname HTTP/1.0\r\n\r\n");
    await until("the HTTP response", async () =>
      Buffer.concat(chunks).toString().includes("bridge\n") ? true : undefined,
    );
    stream.destroy();
    const text = Buffer.concat(chunks).toString();
    expect(text).toMatch(/^HTTP\/1\.[01] 200 OK/);

    const listener = await cri.portForwardListen(pod, 8080);
    try {
      expect(await httpGet(`http://127.0.0.1:${listener.port}/hostname`)).toBe("bridge\n");
      expect(await httpGet(`http://127.0.0.1:${listener.port}/hostname`)).toBe("bridge\n");
    } finally {
      await listener.close();
    }
  });

  it("reads logs with a 40 KiB line whole, and follows new lines", async () => {
    const entries = await until("the big line in the log", async () => {
      const all: CriLogEntry[] = [];
      for await (const e of cri.logs(main)) all.push(e);
      return all.some((e) => e.content === "big-done") ? all : undefined;
    });
    const big = entries.find((e) => e.content.length === BIG);
    expect(big?.content).toBe("x".repeat(BIG));
    expect(big?.parts).toBeGreaterThan(2);
    expect(entries.find((e) => e.stream === "stderr")?.content).toBe("to-stderr");

    const tail = [];
    for await (const e of cri.logs(main, { tail: 1 })) tail.push(e);
    expect(tail).toHaveLength(1);

    const ac = new AbortController();
    const since = new Date();
    const followed: CriLogEntry[] = [];
    await expect(
      (async () => {
        for await (const e of cri.logs(main, { follow: true, tail: 0, signal: ac.signal })) {
          followed.push(e);
          if (followed.length === 2) ac.abort();
        }
      })(),
    ).rejects.toBeInstanceOf(AbortedError);
    expect(followed.map((e) => e.content)).toEqual(["tick", "tick"]);
    expect(followed[0]?.time.getTime()).toBeGreaterThanOrEqual(since.getTime() - 1000);
  });

  it("attaches to a container's stdin and stdout", async () => {
    const id = await cri.createContainer(pod, {
      metadata: { name: "echo" },
      image: { image: IMAGE },
      labels: LABELS,
      stdin: true,
      command: ["sh", "-c", "while read x; do echo attached:$x; done"],
    });
    await cri.startContainer(id);
    const session = await cri.attach(id, { stdin: true });
    const chunks: Buffer[] = [];
    session.stdout.on("data", (c: Buffer) => chunks.push(c));
    session.stdin?.write("hi\n");
    await until("the echo", async () =>
      Buffer.concat(chunks).toString().includes("attached:hi") ? true : undefined,
    );
    session.close();
    await session.exit.catch(() => {});
    await cri.stopContainer(id, 0);
    const { status } = await cri.containerStatus(id);
    expect(status?.state).toBe(ContainerState.CONTAINER_EXITED);
    await cri.removeContainer(id);
    await expect(cri.containerStatus(id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("reports stats", async () => {
    const stats = await cri.containerStats(main);
    expect(stats?.attributes?.id).toBe(main);
    expect(stats?.memory?.workingSetBytes?.value).toBeGreaterThan(0n);
    const all = await cri.listContainerStats({ podSandboxId: pod });
    expect(all.map((s) => s.attributes?.id)).toContain(main);
  });
});

describe("pod on the host network", () => {
  it("runs a container in the host's network namespace", async () => {
    const config = sandboxConfig("host", true);
    const id = await cri.runPodSandbox(config);
    const { status } = await cri.podSandboxStatus(id);
    expect(status?.state).toBe(PodSandboxState.SANDBOX_READY);
    expect(status?.linux?.namespaces?.options?.network).toBe(NamespaceMode.NODE);
    const c = await cri.createContainer(id, {
      metadata: { name: "h" },
      image: { image: IMAGE },
      labels: LABELS,
      command: ["sleep", "3600"],
    });
    await cri.startContainer(c);
    const r = await cri.execSync(c, ["sh", "-c", "ip -4 -o addr; hostname"], { timeout: 10_000 });
    // Only the host's namespace has the bridge's gateway address.
    expect(r.stdout.toString()).toContain(`${daemonSet.criSubnet}.1/24`);
    expect(r.stdout.toString()).toContain(hostname());
    await cri.stopPodSandbox(id);
    await cri.removeContainer(c);
    await cri.removePodSandbox(id);
    await expect(cri.podSandboxStatus(id)).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe("images", () => {
  const authImage = `${env.BERTH_AUTH_REGISTRY}/busybox:latest`;

  it("lists and inspects the pulled test image", async () => {
    const { image } = await cri.imageStatus(IMAGE);
    expect(image?.repoTags).toContain(IMAGE);
    const images = await cri.listImages({ image: { image: IMAGE } });
    expect(images.map((i) => i.id)).toContain(image?.id);
    const missing = await cri.imageStatus("127.0.0.1:5000/berth-no-such-image:none");
    expect(missing.image).toBeUndefined();
  });

  it("pull from the auth registry without credentials is UnauthorizedError", async () => {
    await expect(cri.pullImage(authImage, { credentials: { config: {} } })).rejects.toBeInstanceOf(
      UnauthorizedError,
    );
  });

  it("pull from the auth registry with credentials from a Docker config works", async () => {
    const auth = Buffer.from(`${env.BERTH_AUTH_REGISTRY_USER}:${env.BERTH_AUTH_REGISTRY_PASSWORD}`).toString(
      "base64",
    );
    const ref = await cri.pullImage(authImage, {
      credentials: { config: { auths: { [env.BERTH_AUTH_REGISTRY as string]: { auth } } } },
    });
    expect(ref).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("pull of a missing image is NotFoundError", async () => {
    await expect(
      cri.pullImage("127.0.0.1:5000/berth-no-such-image:none", { auth: false }),
    ).rejects.toBeInstanceOf(NotFoundError);
  });
});
