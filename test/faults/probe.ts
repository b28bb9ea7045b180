// Run by the fault tests (as root, dropping to nobody before any call: root may use any socket): call each
// client on the socket given, which nobody may not open, and print what each one threw, one JSON object per
// line.
// Started through tsx with tsconfig.probe.json, so @berth/* are the package sources, as under vitest.
import { ContainerdClient } from "../../packages/containerd-client/src/index.js";
import { CriClient } from "../../packages/crio-client/src/index.js";
import { DockerClient } from "../../packages/docker-client/src/index.js";

const path = process.argv[2];
if (!path) throw new Error("usage: probe.ts <socket path>");

// Started as root, so that it can read the checkout wherever it is (a clone under a 0700 mktemp folder
// is out of nobody's reach); the modules are loaded by now, so drop to nobody before touching the socket.
process.setgroups?.([]);
process.setgid?.(65534);
process.setuid?.(65534);
if (process.getuid?.() !== 65534) throw new Error("probe.ts: could not become uid 65534");

async function attempt(client: string, call: () => Promise<unknown>): Promise<void> {
  let outcome: Record<string, unknown>;
  try {
    await call();
    outcome = { client, ok: true };
  } catch (err) {
    const e = err as Error & { code?: unknown };
    outcome = { client, ok: false, name: e.name, code: e.code, message: e.message };
  }
  process.stdout.write(`${JSON.stringify(outcome)}\n`);
}

const docker = new DockerClient({ host: `unix://${path}` });
await attempt("docker", () => docker.system.ping({}, { timeout: 5000 }));
await docker.close();
const containerd = new ContainerdClient({ address: path });
await attempt("containerd", () => containerd.version.version({}, { timeout: 5000 }));
containerd.close();
const cri = new CriClient({ endpoint: `unix://${path}` });
await attempt("cri", () => cri.version({ timeout: 5000 }));
cri.close();
