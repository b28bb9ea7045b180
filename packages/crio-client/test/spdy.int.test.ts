// Exec, attach and port-forward over SPDY against containerd's CRI streaming server (containerd 1.6 speaks
// WebSocket only as v4, so SPDY is the one way to close stdin there). Everything created carries this
// run's label and is removed in afterAll; the daemons are shared.
import { randomBytes } from "node:crypto";
import { get } from "node:http";
import type { DeepPartial } from "@berth/grpc";
import { AbortedError, DaemonError } from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContainerState, CriClient, NamespaceMode, type PodSandboxConfig } from "../src/index.js";

const env = process.env;
const IMAGE = env.BERTH_TEST_IMAGE ?? "127.0.0.1:5000/busybox:latest";
const RUN = `berth-spdy-${process.pid}-${randomBytes(3).toString("hex")}`;
const LABELS = { "berth.run": RUN };
const HOSTNAME = "spdy-pod";

const cri = CriClient.fromEnv();
let pod = "";
let main = "";

function sandboxConfig(): DeepPartial<PodSandboxConfig> {
  return {
    metadata: { name: RUN, uid: RUN, namespace: "berth-test" },
    hostname: HOSTNAME,
    labels: LABELS,
    linux: {
      securityContext: {
        namespaceOptions: {
          network: NamespaceMode.POD,
          pid: NamespaceMode.CONTAINER,
          ipc: NamespaceMode.POD,
        },
      },
    },
  };
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

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

beforeAll(async () => {
  await cri.pullImage(IMAGE, { auth: false });
  pod = await cri.runPodSandbox(sandboxConfig());
  main = await cri.createContainer(pod, {
    metadata: { name: "main" },
    image: { image: IMAGE },
    labels: LABELS,
    command: ["sh", "-c", "httpd -p 8080 -h /etc; while true; do sleep 1; done"],
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
  }
}, 120_000);

describe("exec over SPDY", () => {
  it("auto picks SPDY: `cat` sees EOF when stdin ends", async () => {
    const session = await cri.exec(main, ["cat"], { stdin: true });
    expect(session.transport).toBe("spdy");
    expect(session.protocol).toBe("v4.channel.k8s.io");
    expect(session.stdinClosable).toBe(true);
    const out = await session.output("hello\n");
    expect(out.stdout.toString()).toBe("hello\n");
    expect(out.stderr.toString()).toBe("");
    expect(out.exitCode).toBe(0);
  });

  it("writing and ending stdin by hand; stdout and stderr stay separate; exit code 5", async () => {
    const session = await cri.exec(main, ["sh", "-c", "cat; echo to-stderr >&2; exit 5"], {
      stdin: true,
      transport: "spdy",
    });
    const result = session.output();
    session.stdin?.write("line one\n");
    session.stdin?.end("line two\n");
    const out = await result;
    expect(out.stdout.toString()).toBe("line one\nline two\n");
    expect(out.stderr.toString()).toBe("to-stderr\n");
    expect(out.exitCode).toBe(5);
    const exit = await session.exit;
    expect(exit.status.reason).toBe("NonZeroExitCode");
  });

  it("carries a megabyte of stdin (the server keeps no flow-control windows) and of stdout", async () => {
    const big = Buffer.alloc(1024 * 1024, "a");
    const wc = await cri.exec(main, ["wc", "-c"], { stdin: true, transport: "spdy" });
    const counted = await wc.output(big);
    expect(counted.stdout.toString().trim()).toBe(String(big.length));

    const head = await cri.exec(main, ["head", "-c", "3000000", "/dev/zero"], { transport: "spdy" });
    let bytes = 0;
    for await (const chunk of head.stdout) bytes += (chunk as Buffer).length;
    expect(bytes).toBe(3_000_000);
    expect((await head.exit).exitCode).toBe(0);
  });

  it("a TTY exec takes resizes", async () => {
    const session = await cri.exec(
      main,
      [
        "sh",
        "-c",
        'for i in $(seq 1 25); do s=$(stty size); [ "$s" = "33 100" ] && break; sleep 0.2; done; echo "size:$s"',
      ],
      { tty: true, transport: "spdy" },
    );
    session.resize(100, 33);
    const out = await session.output();
    expect(out.stdout.toString()).toContain("size:33 100");
    expect(out.exitCode).toBe(0);
  });

  it("an aborted exec ends promptly with AbortedError", async () => {
    const ac = new AbortController();
    const session = await cri.exec(main, ["sleep", "30"], { signal: ac.signal, transport: "spdy" });
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 200);
    await expect(session.exit).rejects.toBeInstanceOf(AbortedError);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it("an explicit WebSocket transport still gets v4 (no stdin close on containerd 1.6)", async () => {
    const session = await cri.exec(main, ["sh", "-c", "echo ws; exit 2"], { transport: "websocket" });
    expect(session.transport).toBe("websocket");
    expect(session.stdinClosable).toBe(false);
    const out = await session.output();
    expect([out.stdout.toString(), out.exitCode]).toEqual(["ws\n", 2]);
  });
});

describe("attach over SPDY", () => {
  it("ending stdin closes a stdinOnce container's stdin; the container ends and so does the attach", async () => {
    const id = await cri.createContainer(pod, {
      metadata: { name: "attach" },
      image: { image: IMAGE },
      labels: LABELS,
      stdin: true,
      stdinOnce: true,
      command: ["sh", "-c", "while read x; do echo attached:$x; done; echo bye; echo gone >&2"],
    });
    await cri.startContainer(id);
    const session = await cri.attach(id, { stdin: true, transport: "spdy" });
    expect(session.transport).toBe("spdy");
    const chunks: Buffer[] = [];
    session.stdout.on("data", (c: Buffer) => chunks.push(c));
    const errChunks: Buffer[] = [];
    session.stderr.on("data", (c: Buffer) => errChunks.push(c));
    session.stdin?.write("hi\n");
    await until("the echo", async () =>
      Buffer.concat(chunks).toString().includes("attached:hi") ? true : undefined,
    );
    session.stdin?.end("there\n");
    const exit = await session.exit;
    expect(exit.exitCode).toBe(0);
    expect(Buffer.concat(chunks).toString()).toBe("attached:hi\nattached:there\nbye\n");
    expect(Buffer.concat(errChunks).toString()).toBe("gone\n");
    const state = await until("the container to exit", async () => {
      const { status } = await cri.containerStatus(id);
      return status?.state === ContainerState.CONTAINER_EXITED ? status.state : undefined;
    });
    expect(state).toBe(ContainerState.CONTAINER_EXITED);
  });
});

describe("port-forward over SPDY", () => {
  it("reaches httpd in the pod; ending the writable side is a FIN the server sees", async () => {
    const stream = await until("httpd to listen", async () => {
      const s = await cri.portForward(pod, 8080, { transport: "spdy" });
      const chunks: Buffer[] = [];
      s.on("data", (c: Buffer) => chunks.push(c));
      // HTTP/1.0: httpd answers and closes, the server ends the streams, the Duplex ends.
      s.end("GET /hostname HTTP/1.0\r\n\r\n");
      const ok = await new Promise<boolean>((resolve) => {
        s.once("end", () => resolve(true));
        s.once("error", () => resolve(false));
      });
      const text = Buffer.concat(chunks).toString();
      return ok && text ? { s, text } : undefined;
    });
    expect(stream.s.transport).toBe("spdy");
    expect(stream.text).toMatch(/^HTTP\/1\.[01] 200 OK/);
    expect(stream.text.endsWith(`\r\n\r\n${HOSTNAME}\n`)).toBe(true);
  });

  it("portForwardListen serves repeated local connections over SPDY", async () => {
    const listener = await cri.portForwardListen(pod, 8080, { transport: "spdy" });
    try {
      expect(await httpGet(`http://127.0.0.1:${listener.port}/hostname`)).toBe(`${HOSTNAME}\n`);
      expect(await httpGet(`http://127.0.0.1:${listener.port}/hostname`)).toBe(`${HOSTNAME}\n`);
    } finally {
      await listener.close();
    }
  });

  it("a port nobody listens on fails with the runtime's message on the error stream", async () => {
    const stream = await cri.portForward(pod, 9, { transport: "spdy" });
    stream.resume();
    stream.end();
    const err = await new Promise((resolve) => stream.once("error", resolve));
    expect(err).toBeInstanceOf(DaemonError);
    expect((err as DaemonError).message).toMatch(/connection refused/);
  });
});
