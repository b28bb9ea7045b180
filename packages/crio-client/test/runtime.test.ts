// CriRuntime's own logic against a fake CriClient: refusals that must come before any call, wait() woken
// by container events (containerd 1.7+; the harness's 1.6 has none), the events probe, and the provider.
import type { ServerStream } from "@berth/grpc";
import { AbortedError, TimeoutError, UnsupportedError, ValidationError } from "@berth/runtime-core";
import { describe, expect, it } from "vitest";
import { hostPorts } from "../src/host-port.js";
import {
  type ContainerEventResponse,
  ContainerEventType,
  ContainerState,
  type CriClient,
  CriRuntime,
  criProvider,
  DEFAULT_CRI_LOG_ROOT,
  probeContainerEvents,
} from "../src/index.js";

const IMAGE = "127.0.0.1:5000/busybox:latest";

/** A client whose every method throws: proves a refusal happened before any call. */
const noCalls = new Proxy(
  {},
  {
    get: (_t, name) => () => {
      throw new Error(`unexpected call: ${String(name)}`);
    },
  },
) as CriClient;

function stream<T>(
  source: (signal: AbortSignal) => AsyncGenerator<T>,
  options?: { signal?: AbortSignal },
): ServerStream<T> {
  const ac = new AbortController();
  options?.signal?.addEventListener("abort", () => ac.abort(), { once: true });
  return {
    cancel: () => ac.abort(),
    [Symbol.asyncIterator]: () => source(ac.signal),
  };
}

const until = (signal: AbortSignal) =>
  new Promise<never>((_, reject) =>
    signal.addEventListener("abort", () => reject(new AbortedError("aborted")), { once: true }),
  );

function event(
  id: string,
  type: ContainerEventType,
  labels: Record<string, string> = {},
): ContainerEventResponse {
  return {
    containerId: id,
    containerEventType: type,
    createdAt: 1_700_000_000_000_000_000n,
    podSandboxStatus: undefined,
    containersStatuses: [{ id, labels } as never],
  };
}

describe("refusals before any call", () => {
  const rt = new CriRuntime(noCalls);

  it("declares what the CRI cannot do", () => {
    expect(rt.backend).toBe("cri");
    expect(rt.capabilities).toMatchObject({
      tmpfs: false,
      signals: false,
      events: false,
      execStdin: true,
      pause: false,
      ports: true,
      hostNetwork: true,
      bridgeNetwork: true,
    });
    expect(rt.logRoot).toBe(DEFAULT_CRI_LOG_ROOT);
    expect(rt.namespace).toBe("berth");
  });

  it("refuses unsupported specs and options with UnsupportedError, bad ones with ValidationError", async () => {
    await expect(rt.create({ image: IMAGE, mounts: [{ type: "tmpfs", target: "/t" }] })).rejects.toThrow(
      UnsupportedError,
    );
    await expect(rt.run({ image: IMAGE, network: "none" })).rejects.toThrow(UnsupportedError);
    await expect(rt.run({ image: IMAGE, user: "1:staff" })).rejects.toThrow(UnsupportedError);
    await expect(rt.create({ image: IMAGE, pod: "p", network: "host" })).rejects.toThrow(ValidationError);
    await expect(rt.create({ image: IMAGE, memory: 0 })).rejects.toThrow(ValidationError);
    // stdin over a stream whose stdin cannot be closed (WebSocket v4) would never end: refused.
    let closed = false;
    const v4Only = new CriRuntime({
      exec: async () => ({
        stdinClosable: false,
        transport: "websocket",
        protocol: "v4.channel.k8s.io",
        close: () => {
          closed = true;
        },
      }),
    } as unknown as CriClient);
    await expect(v4Only.exec("c", ["cat"], { stdin: "x" })).rejects.toThrow(UnsupportedError);
    expect(closed).toBe(true);
    await expect(rt.exec("c", ["true"], { env: { A: "1" } })).rejects.toThrow(UnsupportedError);
    await expect(rt.exec("c", ["true"], { workdir: "/tmp" })).rejects.toThrow(UnsupportedError);
    await expect(rt.exec("c", ["true"], { user: "0" })).rejects.toThrow(UnsupportedError);
    await expect(rt.kill("c", "SIGTERM")).rejects.toThrow(UnsupportedError);
    await expect(rt.stop("c", { signalName: "SIGINT" })).rejects.toThrow(UnsupportedError);
    await expect(rt.pause("c")).rejects.toThrow(UnsupportedError);
    await expect(rt.unpause("c")).rejects.toThrow(UnsupportedError);
    await expect(rt.pull(IMAGE, { platform: "linux/arm64" })).rejects.toThrow(UnsupportedError);
    const events = rt.events()[Symbol.asyncIterator]();
    await expect(events.next()).rejects.toThrow(UnsupportedError);
  });

  it("honours an abort before anything starts", async () => {
    const signal = AbortSignal.abort();
    await expect(rt.run({ image: IMAGE }, { signal })).rejects.toThrow(AbortedError);
    await expect(rt.create({ image: IMAGE }, { signal })).rejects.toThrow(AbortedError);
  });
});

describe("wait() with container events", () => {
  function fake(options: { eventsFail?: boolean } = {}) {
    let state = ContainerState.CONTAINER_RUNNING;
    let statusCalls = 0;
    const subscribers = new Set<(e: ContainerEventResponse) => void>();
    const client = {
      containerStatus: async (id: string) => {
        statusCalls++;
        return {
          status: { id, state, exitCode: state === ContainerState.CONTAINER_EXITED ? 7 : 0, finishedAt: 0n },
        };
      },
      getContainerEvents: (opts?: { signal?: AbortSignal }) =>
        stream(async function* (signal) {
          if (options.eventsFail) throw new UnsupportedError("GetContainerEvents: unimplemented");
          const queue: ContainerEventResponse[] = [];
          let wake: (() => void) | undefined;
          const push = (e: ContainerEventResponse) => {
            queue.push(e);
            wake?.();
          };
          subscribers.add(push);
          try {
            for (;;) {
              while (queue.length) yield queue.shift() as ContainerEventResponse;
              await Promise.race([new Promise<void>((r) => (wake = r)), until(signal)]);
            }
          } finally {
            subscribers.delete(push);
          }
        }, opts),
    };
    return {
      client: client as unknown as CriClient,
      exit: () => {
        state = ContainerState.CONTAINER_EXITED;
        for (const s of subscribers) s(event("c1", ContainerEventType.CONTAINER_STOPPED_EVENT));
      },
      statusCalls: () => statusCalls,
      subscribers: () => subscribers.size,
    };
  }

  it("wakes on the container's stop event instead of polling", async () => {
    const f = fake();
    const rt = new CriRuntime(f.client, { containerEvents: true, pollInterval: 10 });
    const t0 = Date.now();
    setTimeout(f.exit, 300);
    expect((await rt.wait("c1")).exitCode).toBe(7);
    expect(Date.now() - t0).toBeLessThan(1_500);
    // One look before, one after the event: no polling in between.
    expect(f.statusCalls()).toBe(2);
    await new Promise((r) => setTimeout(r, 10));
    expect(f.subscribers()).toBe(0);
  });

  it("falls back to polling when the event stream fails", async () => {
    const f = fake({ eventsFail: true });
    const rt = new CriRuntime(f.client, { containerEvents: true, pollInterval: 20 });
    setTimeout(f.exit, 200);
    const t0 = Date.now();
    expect((await rt.wait("c1")).exitCode).toBe(7);
    expect(Date.now() - t0).toBeLessThan(1_500);
    expect(f.statusCalls()).toBeGreaterThan(2);
  });

  it("is abortable", async () => {
    const f = fake();
    const rt = new CriRuntime(f.client, { containerEvents: true });
    await expect(rt.wait("c1", { signal: AbortSignal.timeout(200) })).rejects.toThrow(AbortedError);
    const polling = new CriRuntime(fake().client, { pollInterval: 20 });
    await expect(polling.wait("c1", { signal: AbortSignal.timeout(200) })).rejects.toThrow(AbortedError);
  });
});

describe("events() and the events probe", () => {
  it("yields container events, filtered by labels", async () => {
    const client = {
      getContainerEvents: (opts?: { signal?: AbortSignal }) =>
        stream(async function* () {
          yield event("a", ContainerEventType.CONTAINER_CREATED_EVENT, { app: "x" });
          yield event("b", ContainerEventType.CONTAINER_STARTED_EVENT, { app: "y" });
          yield event("a", ContainerEventType.CONTAINER_DELETED_EVENT, { app: "x" });
        }, opts),
    } as unknown as CriClient;
    const rt = new CriRuntime(client, { containerEvents: true });
    const seen = [];
    for await (const e of rt.events({ labels: { app: "x" } })) seen.push([e.id, e.action]);
    expect(seen).toEqual([
      ["a", "create"],
      ["a", "destroy"],
    ]);
  });

  const crio = { version: async () => ({ runtimeName: "cri-o", runtimeVersion: "1.30.0" }) };

  it("knows containerd by its version, without a probe", async () => {
    const noProbe = () => {
      throw new Error("probed");
    };
    const at = (runtimeVersion: string) =>
      ({
        version: async () => ({ runtimeName: "containerd", runtimeVersion }),
        getContainerEvents: noProbe,
      }) as unknown as CriClient;
    expect(await probeContainerEvents(at("1.6.20~ds1"))).toBe(false);
    expect(await probeContainerEvents(at("2.1.9+unknown"))).toBe(true);
  });

  it("asks another runtime: no for UNIMPLEMENTED and yes for a stream that stays open", async () => {
    const unimplemented = {
      ...crio,
      getContainerEvents: () =>
        stream(async function* () {
          yield* [];
          throw new UnsupportedError("unimplemented");
        }),
    } as unknown as CriClient;
    expect(await probeContainerEvents(unimplemented)).toBe(false);
    const open = {
      ...crio,
      getContainerEvents: (opts: { timeout?: number }) =>
        stream(async function* () {
          await new Promise((r) => setTimeout(r, opts.timeout));
          yield* [];
          throw new TimeoutError("deadline");
        }),
    } as unknown as CriClient;
    expect(await probeContainerEvents(open, { timeout: 50 })).toBe(true);
  });
});

describe("criProvider", () => {
  const env = { CRI_CONFIG_FILE: "/nonexistent/crictl.yaml" };

  it("takes CONTAINER_RUNTIME_ENDPOINT, and the log root from BERTH_CRI_LOG_DIR", async () => {
    const [c, ...rest] = await criProvider.fromEnv({
      ...env,
      CONTAINER_RUNTIME_ENDPOINT: "unix:///run/x.sock",
      BERTH_CRI_LOG_DIR: "/tmp/logs",
    });
    expect(rest).toEqual([]);
    expect(c).toMatchObject({
      backend: "cri",
      endpoint: "unix:///run/x.sock",
      source: "CONTAINER_RUNTIME_ENDPOINT",
    });
    const rt = (await c?.open()) as CriRuntime;
    try {
      expect(rt).toBeInstanceOf(CriRuntime);
      expect(rt.logRoot).toBe("/tmp/logs");
      expect(rt.cri.endpoint).toBe("unix:///run/x.sock");
    } finally {
      await rt.close();
    }
  });

  it("configures nothing without the variables, and offers crictl's default sockets", async () => {
    expect(await criProvider.fromEnv(env)).toEqual([]);
    expect(criProvider.defaults(env).map((c) => [c.endpoint, c.source])).toEqual([
      ["unix:///var/run/crio/crio.sock", "default socket"],
      ["unix:///run/containerd/containerd.sock", "default socket"],
      ["unix:///var/run/cri-dockerd.sock", "default socket"],
    ]);
  });
});

describe("hostPorts", () => {
  it("keeps given host ports and picks free ones for the rest", async () => {
    expect(await hostPorts(undefined)).toBeUndefined();
    const given = [{ containerPort: 80, hostPort: 8080 }];
    expect(await hostPorts(given)).toBe(given);
    const [tcp, udp] =
      (await hostPorts([
        { containerPort: 80, hostIp: "127.0.0.1" },
        { containerPort: 53, protocol: "udp" },
      ])) ?? [];
    expect(tcp?.hostPort).toBeGreaterThan(0);
    expect(tcp?.hostIp).toBe("127.0.0.1");
    expect(udp?.hostPort).toBeGreaterThan(0);
  });

  it("refuses a host IP that is not this host's", async () => {
    await expect(hostPorts([{ containerPort: 80, hostIp: "192.0.2.1" }])).rejects.toThrow(ValidationError);
  });
});
