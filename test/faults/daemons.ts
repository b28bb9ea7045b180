// Private containerd and dockerd for the fault tests. Those tests kill daemons with SIGKILL in the middle
// of calls, so they must never touch the harness's shared daemons, which other test files use at the same
// time. Everything lives under one short folder, /run/berth-f<6 hex> (unix socket paths must stay under
// 108 bytes, dockerd's libnetwork sockets included), and teardown() removes every trace of it: containers,
// tasks, shims, orphaned container processes, cgroups, shim sockets, mounts and the folder itself.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, openSync } from "node:fs";
import { mkdir, readdir, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { connect } from "node:net";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

const exec$ = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export type DaemonName = "containerd" | "dockerd";

/** Folders made by this module: /run/berth-f + 6 hex digits (never the harness's /run/berth-<12 hex>). */
const DIR_PATTERN = /^berth-f[0-9a-f]{6}$/;
const BASE = "/run";
/** Where containerd 1.6 shims listen, whatever the daemon's state dir: a shim killed with SIGKILL leaves its
 *  socket there. */
const SHIM_SOCKETS = "/run/containerd/s/";
/** Host folders the daemons create whatever their flags say, deepest first: removed again (when empty) if
 *  they were not there before. */
const HOST_DIRS = ["/run/containerd/s", "/run/containerd", "/run/docker/plugins", "/run/docker"];

interface Daemon {
  readonly name: DaemonName;
  readonly argv: readonly string[];
  readonly log: string;
  ready(): Promise<boolean>;
  proc: ChildProcess | undefined;
  exited: Promise<void> | undefined;
}

function running(d: Daemon): boolean {
  return d.proc !== undefined && d.proc.exitCode === null && d.proc.signalCode === null;
}

/** A unix socket accepts a connection. */
function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.setTimeout(1000, () => s.destroy());
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
    s.once("close", () => resolve(false));
  });
}

function httpPing(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: "/_ping", timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once("error", () => resolve(false));
    req.once("timeout", () => req.destroy());
    req.end();
  });
}

async function ctrOk(address: string): Promise<boolean> {
  if (!(await accepts(address))) return false;
  return exec$("ctr", ["-a", address, "version"], { timeout: 3000 }).then(
    () => true,
    () => false,
  );
}

async function pidsOf(): Promise<number[]> {
  return (await readdir("/proc")).filter((n) => /^\d+$/.test(n)).map(Number);
}

async function cmdline(pid: number): Promise<string | undefined> {
  return readFile(`/proc/${pid}/cmdline`, "utf8").then(
    (s) => s.replaceAll("\0", " ").trim(),
    () => undefined,
  );
}

/** Processes (not this one, nor its ancestors) whose command line names a path inside `dir`. */
export async function processesMentioning(dir: string): Promise<{ pid: number; cmd: string }[]> {
  const skip = new Set<number>();
  for (let p = process.pid; p > 1; ) {
    skip.add(p);
    const st = await readFile(`/proc/${p}/stat`, "utf8").catch(() => "");
    p = Number(st.slice(st.lastIndexOf(")") + 2).split(" ")[1] ?? 0);
  }
  const out: { pid: number; cmd: string }[] = [];
  for (const pid of await pidsOf()) {
    if (skip.has(pid)) continue;
    const cmd = await cmdline(pid);
    if (cmd && (cmd.includes(`${dir}/`) || cmd.endsWith(dir))) out.push({ pid, cmd });
  }
  return out;
}

/** Mount points at or below `dir`, deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  const points = info
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((m): m is string => m !== undefined)
    .map((m) => m.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))))
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Paths of the unix sockets a process listens on (from its fds and /proc/net/unix). */
async function listeningSocketsOf(pid: number): Promise<string[]> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m?.[1]) inodes.add(m[1]);
  }
  const table = await readFile("/proc/net/unix", "utf8").catch(() => "");
  const paths: string[] = [];
  for (const line of table.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    // Num RefCount Protocol Flags Type St Inode Path; flag 00010000 = __SO_ACCEPTCON (listening)
    if (f.length >= 8 && f[3] === "00010000" && inodes.has(f[6] as string)) paths.push(f[7] as string);
  }
  return paths;
}

async function cgroupMounts(): Promise<string[]> {
  const mounts = await readFile("/proc/self/mounts", "utf8");
  return mounts
    .split("\n")
    .map((l) => l.split(" "))
    .filter((f) => f[2] === "cgroup" || f[2] === "cgroup2")
    .map((f) => f[1] as string);
}

/** Remove a cgroup subtree (children first); cgroup dirs can only be rmdir'ed, never rm -r'ed. */
async function removeCgroupTree(path: string): Promise<void> {
  const entries = await readdir(path, { withFileTypes: true }).catch(() => undefined);
  if (!entries) return;
  for (const e of entries) if (e.isDirectory()) await removeCgroupTree(join(path, e.name));
  await exec$("rmdir", [path]).catch(() => {});
}

export interface TeardownReport {
  /** What was still there after the teardown (empty when it left nothing). */
  leftovers: string[];
  /** Lines describing what had to be cleaned by force. */
  actions: string[];
}

export class PrivateDaemons {
  /** The folder holding everything: configs, state, sockets, logs. */
  readonly dir: string;
  /** containerd's gRPC socket. */
  readonly containerdSock: string;
  /** dockerd's API socket. */
  readonly dockerSock: string;
  /** The runc root for tasks created through containerd (the shim's default is a shared /run path). */
  readonly runcRoot: string;
  /** A containerd namespace that is this instance's own: its cgroup parent is removed by teardown. */
  readonly namespace: string;
  readonly #daemons: Record<DaemonName, Daemon>;
  #absentHostDirs: string[] = [];

  private constructor(dir: string) {
    this.dir = dir;
    this.containerdSock = join(dir, "c.sock");
    this.dockerSock = join(dir, "d.sock");
    this.runcRoot = join(dir, "runc");
    this.namespace = dir.slice(dir.lastIndexOf("/") + 1);
    const ctd = join(dir, "ctd");
    const containerdSock = this.containerdSock;
    const dockerSock = this.dockerSock;
    this.#daemons = {
      containerd: {
        name: "containerd",
        argv: ["/usr/bin/containerd", "--config", join(ctd, "config.toml")],
        log: join(dir, "logs", "containerd.log"),
        ready: () => ctrOk(containerdSock),
        proc: undefined,
        exited: undefined,
      },
      dockerd: {
        name: "dockerd",
        argv: [
          "/usr/sbin/dockerd",
          "--config-file",
          join(dir, "docker", "daemon.json"),
          "--data-root",
          join(dir, "docker", "root"),
          "--exec-root",
          join(dir, "dx"),
          "--pidfile",
          join(dir, "docker", "dockerd.pid"),
          "-H",
          `unix://${dockerSock}`,
          "--containerd",
          containerdSock,
          "--bridge=none",
          "--iptables=false",
          "--ip-masq=false",
          "--storage-driver",
          "overlay2",
        ],
        log: join(dir, "logs", "dockerd.log"),
        ready: () => httpPing(dockerSock),
        proc: undefined,
        exited: undefined,
      },
    };
  }

  /** Make the folder and the config files; no daemon is started yet. */
  static async create(): Promise<PrivateDaemons> {
    let dir = "";
    for (;;) {
      dir = join(BASE, `berth-f${randomBytes(3).toString("hex")}`);
      try {
        await mkdir(dir, { mode: 0o711 });
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
    }
    const d = new PrivateDaemons(dir);
    for (const h of HOST_DIRS) if (!(await exists(h))) d.#absentHostDirs.push(h);
    // Who owns the folder: a later run removes it if this process dies before its teardown.
    await writeFile(join(dir, "owner"), `${process.pid}\n`);
    const ctd = join(dir, "ctd");
    for (const sub of ["root", "state", "tmp", "opt"]) await mkdir(join(ctd, sub), { recursive: true });
    for (const sub of ["logs", "docker/root", "dx", "runc"]) await mkdir(join(dir, sub), { recursive: true });
    await writeFile(
      join(ctd, "config.toml"),
      `version = 2
root = "${ctd}/root"
state = "${ctd}/state"
temp = "${ctd}/tmp"
# No CRI: it would set up CNI and a streaming server, and the fault tests speak containerd's own API.
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "${d.containerdSock}"

[ttrpc]
  address = "${d.containerdSock}.ttrpc"

[debug]
  level = "info"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "${ctd}/opt"
`,
    );
    await writeFile(
      join(dir, "docker", "daemon.json"),
      `${JSON.stringify({ "deprecated-key-path": join(dir, "docker", "key.json"), "shutdown-timeout": 2 }, null, 2)}\n`,
    );
    return d;
  }

  pid(name: DaemonName): number | undefined {
    const d = this.#daemons[name];
    return running(d) ? d.proc?.pid : undefined;
  }

  /** Start a daemon (same arguments every time) and wait until it answers. */
  async start(name: DaemonName, timeoutMs = 30_000): Promise<void> {
    const d = this.#daemons[name];
    if (running(d)) throw new Error(`${name} is already running (pid ${d.proc?.pid})`);
    const fd = openSync(d.log, "a");
    try {
      // Own session: a signal to the test's process group never reaches it; only kill() does.
      const proc = spawn(d.argv[0] as string, d.argv.slice(1), { detached: true, stdio: ["ignore", fd, fd] });
      d.proc = proc;
      d.exited = new Promise<void>((resolve) => {
        proc.once("exit", () => resolve());
        proc.once("error", () => resolve());
      });
    } finally {
      closeSync(fd);
    }
    await this.waitUntilAnswering(name, timeoutMs);
  }

  /** Wait until the daemon answers (containerd: ctr version; dockerd: /_ping). */
  async waitUntilAnswering(name: DaemonName, timeoutMs = 30_000): Promise<void> {
    const d = this.#daemons[name];
    const end = Date.now() + timeoutMs;
    for (;;) {
      if (!running(d)) throw new Error(`${name} exited while starting:\n${await this.logTail(name)}`);
      if (await d.ready()) return;
      if (Date.now() > end)
        throw new Error(`${name} did not answer in ${timeoutMs} ms:\n${await this.logTail(name)}`);
      await sleep(50);
    }
  }

  /** SIGKILL the daemon and wait until it is gone (reaped). Returns the time the signal was sent. */
  async kill(name: DaemonName): Promise<number> {
    const d = this.#daemons[name];
    if (!running(d) || !d.proc?.pid) throw new Error(`${name} is not running`);
    const at = performance.now();
    d.proc.kill("SIGKILL");
    await d.exited;
    return at;
  }

  /** Start a killed daemon again, with the same arguments, and wait until it answers. */
  async restart(name: DaemonName, timeoutMs = 30_000): Promise<void> {
    const d = this.#daemons[name];
    if (running(d)) await this.kill(name);
    await this.start(name, timeoutMs);
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(name: DaemonName, graceMs = 5000): Promise<void> {
    const d = this.#daemons[name];
    if (!running(d)) return;
    d.proc?.kill("SIGTERM");
    const done = await Promise.race([d.exited?.then(() => true), sleep(graceMs).then(() => false)]);
    if (!done) {
      d.proc?.kill("SIGKILL");
      await d.exited;
    }
  }

  async logTail(name: DaemonName, lines = 30): Promise<string> {
    const text = await readFile(this.#daemons[name].log, "utf8").catch(() => "");
    return text.split("\n").slice(-lines).join("\n");
  }

  /**
   * Remove everything: containers and tasks through the daemons while they answer, then the daemons,
   * runc containers left under our roots (their processes and cgroups), every process naming the folder
   * (shims), the sockets those shims listened on, our cgroup parents, the mounts under the folder, and
   * the folder. Reports whatever it could not remove.
   */
  async teardown(): Promise<TeardownReport> {
    const actions: string[] = [];
    const dir = this.dir;
    if (running(this.#daemons.dockerd) && (await httpPing(this.dockerSock))) {
      await exec$(
        "curl",
        ["-fsS", "-m", "10", "--unix-socket", this.dockerSock, "http://d/containers/json?all=1&quiet=1"],
        { timeout: 15_000 },
      )
        .then(async ({ stdout }) => {
          const ids = (JSON.parse(stdout) as { Id: string }[]).map((c) => c.Id);
          for (const id of ids) {
            await exec$(
              "curl",
              [
                "-fsS",
                "-m",
                "20",
                "-X",
                "DELETE",
                "--unix-socket",
                this.dockerSock,
                `http://d/containers/${id}?force=1&v=1`,
              ],
              { timeout: 25_000 },
            ).catch(() => actions.push(`could not remove docker container ${id.slice(0, 12)}`));
          }
        })
        .catch(() => actions.push("could not list docker containers"));
    }
    await this.stop("dockerd");
    if (running(this.#daemons.containerd) && (await ctrOk(this.containerdSock))) {
      const ctr = (...args: string[]) =>
        exec$("ctr", ["-a", this.containerdSock, ...args], { timeout: 15_000 }).then((r) => r.stdout);
      const namespaces = (await ctr("namespaces", "ls", "-q").catch(() => "")).split("\n").filter(Boolean);
      for (const ns of namespaces) {
        const tasks = (await ctr("-n", ns, "tasks", "ls", "-q").catch(() => "")).split("\n").filter(Boolean);
        for (const t of tasks) await ctr("-n", ns, "tasks", "kill", "-a", "-s", "SIGKILL", t).catch(() => "");
        for (const t of tasks) {
          for (let i = 0; i < 50; i++) {
            if (
              await ctr("-n", ns, "tasks", "rm", "-f", t).then(
                () => true,
                () => false,
              )
            )
              break;
            await sleep(100);
          }
        }
        const ctrs = (await ctr("-n", ns, "containers", "ls", "-q").catch(() => ""))
          .split("\n")
          .filter(Boolean);
        for (const c of ctrs) await ctr("-n", ns, "containers", "rm", c).catch(() => "");
      }
    }
    await this.stop("containerd");

    // Containers whose shim is gone (killed, or never told): runc kills their processes and removes
    // their cgroups. dockerd's runc root is <exec-root>/runtime-runc/<ns>, ours <dir>/runc/<ns>.
    const states = [
      ...(await findFiles(join(dir, "dx", "runtime-runc"), "state.json", 2)),
      ...(await findFiles(this.runcRoot, "state.json", 2)),
    ];
    for (const state of states) {
      const containerDir = dirname(state);
      const root = dirname(containerDir);
      const id = containerDir.slice(containerDir.lastIndexOf("/") + 1);
      await exec$("runc", ["--root", root, "delete", "--force", id], { timeout: 15_000 }).then(
        () => actions.push(`runc delete --force ${id.slice(0, 12)}`),
        () => {},
      );
    }

    // Shims (and anything else) still naming the folder; their listening sockets go with them.
    for (let round = 0; round < 20; round++) {
      const procs = await processesMentioning(dir);
      if (procs.length === 0) break;
      for (const p of procs) {
        const socks = await listeningSocketsOf(p.pid);
        try {
          process.kill(p.pid, "SIGKILL");
          actions.push(`killed ${p.cmd.slice(0, 80)} (pid ${p.pid})`);
        } catch {}
        for (const s of socks) {
          // /proc/net/unix shows abstract sockets with a leading @: those vanish with the process
          if (s.startsWith(SHIM_SOCKETS)) await rm(s, { force: true }).catch(() => {});
        }
      }
      await sleep(100);
    }
    // Shims that were gone before (killed by someone else) left their sockets too: containerd 1.6 names
    // them sha256(<containerd address>/<namespace>/<id>), for each task bundle in its state dir.
    const bundles = join(dir, "ctd", "state", "io.containerd.runtime.v2.task");
    for (const ns of await readdir(bundles).catch(() => [] as string[])) {
      for (const id of await readdir(join(bundles, ns)).catch(() => [] as string[])) {
        const hash = createHash("sha256").update(`${this.containerdSock}/${ns}/${id}`).digest("hex");
        await rm(join(SHIM_SOCKETS, hash), { force: true }).catch(() => {});
      }
    }

    // The cgroup parent of our containerd namespace (runc removes only the leaves).
    for (const m of await cgroupMounts()) {
      const cg = join(m, this.namespace);
      if (await exists(cg)) {
        await removeCgroupTree(cg);
        actions.push(`removed cgroup ${cg}`);
      }
    }

    for (let round = 0; round < 5; round++) {
      const mounts = await mountsUnder(dir);
      if (mounts.length === 0) break;
      for (const m of mounts) {
        const ok = await exec$("umount", [m]).then(
          () => true,
          () =>
            exec$("umount", ["-l", m]).then(
              () => true,
              () => false,
            ),
        );
        if (ok) actions.push(`umount ${m}`);
      }
    }
    if ((await mountsUnder(dir)).length === 0) {
      await rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
    }

    for (const h of this.#absentHostDirs) await exec$("rmdir", [h]).catch(() => {});

    const leftovers: string[] = [];
    for (const p of await processesMentioning(dir))
      leftovers.push(`process ${p.pid}: ${p.cmd.slice(0, 120)}`);
    for (const m of await mountsUnder(dir)) leftovers.push(`mount ${m}`);
    for (const m of await cgroupMounts()) {
      const cg = join(m, this.namespace);
      if (await exists(cg)) leftovers.push(`cgroup ${cg}`);
    }
    if (await exists(dir)) leftovers.push(`folder ${dir}`);
    return { leftovers, actions };
  }

  /**
   * Folders of earlier runs whose owner process is gone (it crashed before its teardown): tear them down.
   * Returns the folders removed.
   */
  static async removeStale(): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await readdir(BASE).catch(() => [] as string[])) {
      if (!DIR_PATTERN.test(name)) continue;
      const dir = join(BASE, name);
      const owner = Number((await readFile(join(dir, "owner"), "utf8").catch(() => "")).trim());
      if (owner > 0 && owner !== process.pid && (await alive(owner))) continue;
      // Its daemons are not our children: teardown stops them by their command lines, with the shims.
      await new PrivateDaemons(dir).teardown();
      removed.push(dir);
    }
    return removed;
  }
}

/** The process exists and is not a zombie. */
async function alive(pid: number): Promise<boolean> {
  const st = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const state = st.slice(st.lastIndexOf(")") + 2).split(" ")[0];
  return state !== undefined && state !== "" && state !== "Z";
}

function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Files named `name` under `dir`, at most `depth` levels down (not following symlinks). */
async function findFiles(dir: string, name: string, depth: number): Promise<string[]> {
  if (depth < 0) return [];
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => undefined);
  if (!entries) return [];
  const out: string[] = [];
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isFile() && e.name === name) out.push(p);
    else if (e.isDirectory() && !e.isSymbolicLink()) out.push(...(await findFiles(p, name, depth - 1)));
  }
  return out;
}
