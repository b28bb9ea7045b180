// CriRuntime against containerd's CRI plugin: what the conformance suite does not see — the pods it
// makes and removes, networks, ports, joining existing pods, the limits of CRI logs and exec.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { get } from "node:http";
import { hostname } from "node:os";
import { join } from "node:path";
import {
  AbortedError,
  ConflictError,
  connectRuntime,
  type LogEntry,
  NotFoundError,
  TimeoutError,
  UnsupportedError,
  ValidationError,
} from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { daemonSet } from "../../../test/support/daemon-set.js";
import { CriClient, CriRuntime, criProvider, NamespaceMode, OWNED_POD_LABEL } from "../src/index.js";
import { safeName } from "../src/runtime-map.js";

const env = process.env;
const IMAGE = env.BERTH_TEST_IMAGE ?? "127.0.0.1:5000/busybox:latest";
const RUN = `berth-crirt-${randomBytes(3).toString("hex")}`;
const LABELS = { "berth.run": RUN };
const LOG_ROOT = join(env.BERTH_CRI_LOG_DIR ?? "/tmp", RUN);
const text = (b: Uint8Array) => Buffer.from(b).toString("utf8");

let rt: CriRuntime;
const cri = CriClient.fromEnv();

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

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const ownedPods = () => cri.listPodSandbox({ labelSelector: { ...LABELS, [OWNED_POD_LABEL]: "true" } });

async function podOf(id: string): Promise<string> {
  const [c] = await cri.listContainers({ id });
  if (!c) throw new Error(`no container ${id}`);
  return c.podSandboxId;
}

async function drain(
  entries: AsyncIterable<LogEntry>,
): Promise<{ stdout: Buffer; stderr: Buffer; all: LogEntry[] }> {
  const all: LogEntry[] = [];
  for await (const e of entries) all.push(e);
  const join = (s: string) => Buffer.concat(all.filter((e) => e.stream === s).map((e) => e.data));
  return { stdout: join("stdout"), stderr: join("stderr"), all };
}

beforeAll(async () => {
  mkdirSync(LOG_ROOT, { recursive: true });
  rt = await CriRuntime.connect({ env, logRoot: LOG_ROOT });
  await rt.pull(IMAGE);
}, 120_000);

afterAll(async () => {
  try {
    for (const c of await rt.list({ labels: LABELS, all: true }))
      await rt.remove(c.id, { force: true }).catch(() => {});
    for (const c of await cri.listContainers({ labelSelector: LABELS }))
      await cri.removeContainer(c.id).catch(() => {});
    for (const p of await cri.listPodSandbox({ labelSelector: LABELS })) {
      await cri.stopPodSandbox(p.id).catch(() => {});
      await cri.removePodSandbox(p.id).catch(() => {});
    }
  } finally {
    await rt?.close();
    cri.close();
    rmSync(LOG_ROOT, { recursive: true, force: true });
  }
}, 120_000);

describe("runtime", () => {
  it("names containerd and its CRI version; events only where the CRI has them (1.7+)", async () => {
    const info = await rt.info();
    expect(info).toMatchObject({ backend: "cri", name: "containerd", apiVersion: "v1" });
    expect(info.version).toMatch(daemonSet.containerd);
    // CriRuntime.connect probed GetContainerEvents: UNIMPLEMENTED on 1.6, a stream on 2.x.
    expect(rt.capabilities.events).toBe(daemonSet.criEvents);
  });

  it("connect() decides events per daemon too, through the provider", async () => {
    const { runtime } = await connectRuntime({ providers: [criProvider], backend: "cri", env: process.env });
    try {
      expect(runtime.capabilities.events).toBe(daemonSet.criEvents);
    } finally {
      await runtime.close();
    }
  });
});

describe("pods the adapter makes", () => {
  it("gives a bridged container its own pod, with an IP, its name as hostname and a log directory", async () => {
    const name = `Web_${RUN}`;
    const id = await rt.create({ image: IMAGE, name, command: ["sleep", "300"], labels: LABELS });
    const pod = await podOf(id);
    const { status } = await cri.podSandboxStatus(pod);
    expect(status?.labels).toEqual({ ...LABELS, [OWNED_POD_LABEL]: "true" });
    expect(status?.metadata?.namespace).toBe("berth");
    const logDirectory = status?.annotations["berth.log-directory"] ?? "";
    expect(logDirectory.startsWith(`${LOG_ROOT}/berth_`)).toBe(true);
    expect(existsSync(logDirectory)).toBe(true);

    await rt.start(id);
    const info = await rt.inspect(id);
    expect(info).toMatchObject({ id, name, image: IMAGE, state: "running", labels: LABELS });
    expect(info.ip?.startsWith(`${daemonSet.criSubnet}.`)).toBe(true);
    expect(info.ip).toBe(status?.network?.ip);
    expect(info.pid).toBeGreaterThan(0);
    const res = await rt.exec(id, ["hostname"]);
    expect(text(res.stdout)).toBe(`${safeName(name)}\n`);

    await expect(rt.remove(id)).rejects.toBeInstanceOf(ConflictError);
    await rt.remove(id, { force: true });
    await expect(cri.podSandboxStatus(pod)).rejects.toBeInstanceOf(NotFoundError);
    expect(existsSync(logDirectory)).toBe(false);
    expect(await ownedPods()).toEqual([]);
  });

  it("runs on the host network: the node's addresses and hostname, no IP of its own", async () => {
    const res = await rt.run(
      { image: IMAGE, network: "host", command: ["sh", "-c", "ip -4 -o addr; hostname"], labels: LABELS },
      { remove: false },
    );
    expect(text(res.stdout)).toContain(`${daemonSet.criSubnet}.1/24`);
    expect(text(res.stdout)).toContain(hostname());
    const pod = await podOf(res.id);
    const { status } = await cri.podSandboxStatus(pod);
    expect(status?.linux?.namespaces?.options?.network).toBe(NamespaceMode.NODE);
    expect((await rt.inspect(res.id)).ip).toBeUndefined();
    await rt.remove(res.id);
    expect(await ownedPods()).toEqual([]);
  });

  it("publishes ports: a given host port, and a free one picked when none is given", async () => {
    const given = 20_000 + Math.floor(Math.random() * 20_000);
    const id = await rt.create({
      image: IMAGE,
      name: "httpd",
      command: ["httpd", "-f", "-p", "8080", "-h", "/etc"],
      labels: LABELS,
      ports: [
        { containerPort: 8080, hostPort: given, hostIp: "127.0.0.1" },
        { containerPort: 8080, hostIp: "127.0.0.1" },
      ],
    });
    try {
      await rt.start(id);
      const verbose = await cri.podSandboxStatus(await podOf(id), { verbose: true });
      const mappings = JSON.parse(verbose.info.info ?? "{}").config.port_mappings as Array<{
        host_port: number;
      }>;
      const picked = mappings[1]?.host_port ?? 0;
      expect(mappings[0]?.host_port).toBe(given);
      expect(picked).toBeGreaterThan(0);
      expect(picked).not.toBe(given);
      for (const port of [given, picked]) {
        const body = await until(`httpd on ${port}`, () => httpGet(`http://127.0.0.1:${port}/hostname`));
        expect(body).toBe("httpd\n");
      }
    } finally {
      await rt.remove(id, { force: true });
    }
  });

  it("creates nothing when the image is missing (create does not pull)", async () => {
    await expect(
      rt.create({ image: "127.0.0.1:5000/berth-no-such-image:none", labels: LABELS }),
    ).rejects.toBeInstanceOf(NotFoundError);
    expect(await ownedPods()).toEqual([]);
  });

  it("refuses a user name the image lacks with NotFoundError, and runs as one it has", async () => {
    const err = await rt.create({ image: IMAGE, user: "berth-no-such-user", labels: LABELS }).catch((e) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.message).toContain('user "berth-no-such-user"');
    expect(await ownedPods()).toEqual([]);
    const res = await rt.run({
      image: IMAGE,
      user: "nobody:65534",
      command: ["sh", "-c", "id -u; id -g"],
      labels: LABELS,
    });
    expect(text(res.stdout)).toBe("65534\n65534\n");
  });

  it("undoes the pod when a run is aborted while it is being made", async () => {
    const mine = { ...LABELS, "berth.early-abort": "yes" };
    for (const ms of [20, 150]) {
      await expect(
        rt.run({ image: IMAGE, command: ["sleep", "30"], labels: mine }, { signal: AbortSignal.timeout(ms) }),
      ).rejects.toBeInstanceOf(AbortedError);
      expect(await cri.listPodSandbox({ labelSelector: mine })).toEqual([]);
      expect(await cri.listContainers({ labelSelector: mine })).toEqual([]);
    }
  });
});

describe("joining existing pods", () => {
  it("creates a container in a pod made elsewhere, with logs, and leaves that pod when removed", async () => {
    const uid = `${RUN}-foreign`;
    const logDirectory = join(LOG_ROOT, "foreign");
    mkdirSync(logDirectory, { recursive: true });
    // Another client made the pod: this runtime's client has no cached config for it.
    const other = CriClient.fromEnv();
    let pod: string;
    try {
      pod = await other.runPodSandbox({
        metadata: { name: uid, uid, namespace: "berth-test" },
        hostname: "foreign",
        logDirectory,
        labels: LABELS,
        linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.CONTAINER } } },
      });
    } finally {
      other.close();
    }
    await expect(rt.create({ image: IMAGE, pod, network: "host" })).rejects.toBeInstanceOf(ValidationError);
    const res = await rt.run(
      { image: IMAGE, pod, command: ["sh", "-c", "hostname; echo err >&2"], labels: LABELS },
      { remove: false },
    );
    expect(text(res.stdout)).toBe("foreign\n");
    expect(text(res.stderr)).toBe("err\n");
    expect(await podOf(res.id)).toBe(pod);
    await rt.remove(res.id);
    const { status } = await cri.podSandboxStatus(pod);
    expect(status?.labels[OWNED_POD_LABEL]).toBeUndefined();
    await cri.stopPodSandbox(pod);
    await cri.removePodSandbox(pod);
  });

  it("keeps an adapter-made pod while another container is still in it", async () => {
    const a = await rt.create({ image: IMAGE, name: "a", command: ["sleep", "300"], labels: LABELS });
    const pod = await podOf(a);
    const b = await rt.create({ image: IMAGE, name: "b", pod, command: ["sleep", "300"], labels: LABELS });
    expect(await podOf(b)).toBe(pod);
    // Names are per pod: the CRI refuses a second "b".
    await expect(rt.create({ image: IMAGE, name: "b", pod, labels: LABELS })).rejects.toBeInstanceOf(
      ConflictError,
    );
    await rt.start(a);
    await rt.start(b);
    // One pod, one network namespace: both see the same address.
    const ip = async (id: string) =>
      text((await rt.exec(id, ["sh", "-c", "ip -4 -o addr show eth0"])).stdout);
    expect(await ip(a)).toBe(await ip(b));
    await rt.remove(a, { force: true });
    expect((await cri.podSandboxStatus(pod)).status?.id).toBe(pod);
    await rt.remove(b, { force: true });
    await expect(cri.podSandboxStatus(pod)).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe("logs", () => {
  it("returns output byte for byte, except that the runtime drops a CR before LF", async () => {
    const res = await rt.run({
      image: IMAGE,
      command: [
        "sh",
        "-c",
        "printf 'a\\r\\nb\\rc\\000\\n'; head -c 40000 /dev/zero | tr '\\0' x; printf 'end'",
      ],
      labels: LABELS,
    });
    const out = text(res.stdout);
    // containerd's CRI logger ends a record at LF and strips a CR before it: "a\r\n" is logged as "a".
    expect(out.startsWith("a\nb\rc\0\n")).toBe(true);
    // A 40000-byte line is written as 16 KiB partial records and comes back whole.
    expect(out.slice(7)).toBe(`${"x".repeat(40_000)}end`);
  });

  it("reads tail and since, each entry with its time", async () => {
    const res = await rt.run(
      { image: IMAGE, command: ["sh", "-c", "echo one; sleep 1.2; echo two; echo three"], labels: LABELS },
      { remove: false },
    );
    try {
      const all = await drain(rt.logs(res.id));
      expect(text(all.stdout)).toBe("one\ntwo\nthree\n");
      for (const e of all.all) expect(e.time).toBeInstanceOf(Date);
      expect(text((await drain(rt.logs(res.id, { tail: 2 }))).stdout)).toBe("two\nthree\n");
      const since = new Date((all.all[1]?.time?.getTime() ?? 0) - 100);
      expect(text((await drain(rt.logs(res.id, { since }))).stdout)).toBe("two\nthree\n");
    } finally {
      await rt.remove(res.id);
    }
  });

  it("follows a created container from its start", async () => {
    const id = await rt.create({ image: IMAGE, command: ["sh", "-c", "echo started"], labels: LABELS });
    try {
      expect((await drain(rt.logs(id))).all).toEqual([]);
      const following = drain(rt.logs(id, { follow: true }));
      await new Promise((r) => setTimeout(r, 300));
      await rt.start(id);
      expect(text((await following).stdout)).toBe("started\n");
    } finally {
      await rt.remove(id, { force: true });
    }
  });
});

describe("exec, wait, kill, stats, list", () => {
  let id = "";
  beforeAll(async () => {
    id = await rt.create({
      image: IMAGE,
      command: ["sleep", "300"],
      labels: LABELS,
      memory: 64 * 1024 * 1024,
    });
    await rt.start(id);
  });
  afterAll(async () => {
    if (id) await rt.remove(id, { force: true });
  });

  it("execs with empty stdin (EOF at once), with a TTY, and bounds it with a timeout", async () => {
    const empty = await rt.exec(id, ["sh", "-c", "cat; echo rc=$?"], { stdin: "" });
    expect(text(empty.stdout)).toBe("rc=0\n");
    const tty = await rt.exec(id, ["sh", "-c", "test -t 1 && echo tty; exit 3"], { tty: true });
    expect(tty.exitCode).toBe(3);
    expect(text(tty.stdout)).toBe("tty\r\n");
    const t0 = Date.now();
    await expect(rt.exec(id, ["sleep", "30"], { timeout: 1000 })).rejects.toBeInstanceOf(TimeoutError);
    expect(Date.now() - t0).toBeLessThan(3_500);
    // stdin travels over SPDY, where it can be closed: cat sees EOF.
    const fed = await rt.exec(id, ["sh", "-c", "cat; exit 4"], { stdin: Buffer.from([0, 1, 255]) });
    expect(fed.exitCode).toBe(4);
    expect([...fed.stdout]).toEqual([0, 1, 255]);
    await expect(rt.exec(`${RUN}-nope`, ["true"])).rejects.toBeInstanceOf(NotFoundError);
  });

  it("reports memory use against the limit", async () => {
    const st = await rt.stats(id);
    expect(st.memoryBytes).toBeGreaterThan(0);
    expect(st.memoryLimitBytes).toBe(64 * 1024 * 1024);
    expect(st.cpuNanos).toBeGreaterThan(0);
    await expect(rt.stats(`${RUN}-nope`)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("lists running containers unless asked for all", async () => {
    const created = await rt.create({ image: IMAGE, command: ["true"], labels: LABELS });
    try {
      const running = (await rt.list({ labels: LABELS })).map((c) => c.id);
      expect(running).toContain(id);
      expect(running).not.toContain(created);
      expect((await rt.list({ labels: LABELS, all: true })).map((c) => c.id)).toContain(created);
    } finally {
      await rt.remove(created);
    }
  });

  it("waits abortably, kills only with SIGKILL, and refuses to kill what is not running", async () => {
    await expect(rt.wait(id, { signal: AbortSignal.timeout(300) })).rejects.toBeInstanceOf(AbortedError);
    await expect(rt.kill(id, "SIGTERM")).rejects.toBeInstanceOf(UnsupportedError);
    await rt.kill(id, "KILL");
    const exit = await rt.wait(id);
    expect(exit.exitCode).toBe(137);
    expect(exit.finishedAt).toBeInstanceOf(Date);
    await expect(rt.kill(id)).rejects.toBeInstanceOf(ConflictError);
  });
});
