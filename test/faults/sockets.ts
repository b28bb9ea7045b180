// Which unix sockets this process holds, and which of them are connected to a given daemon socket: read
// from /proc/self/fd (socket:[inode]) and `ss -xn` (every unix socket's bound path and peer inode).
import { execFile } from "node:child_process";
import { readdir, readFile, readlink } from "node:fs/promises";
import { promisify } from "node:util";

const exec$ = promisify(execFile);

/** Inodes of the sockets this process has open. */
async function ownSocketInodes(): Promise<Set<string>> {
  const out = new Set<string>();
  for (const fd of await readdir("/proc/self/fd").catch(() => [] as string[])) {
    const link = await readlink(`/proc/self/fd/${fd}`).catch(() => "");
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m?.[1]) out.add(m[1]);
  }
  return out;
}

/** Inodes of every unix socket on the host. */
async function unixInodes(): Promise<Set<string>> {
  const table = await readFile("/proc/net/unix", "utf8");
  const out = new Set<string>();
  for (const line of table.split("\n").slice(1)) {
    const inode = line.trim().split(/\s+/)[6];
    if (inode) out.add(inode);
  }
  return out;
}

/** The unix sockets this process holds (inodes). */
export async function ownUnixSockets(): Promise<Set<string>> {
  const [own, unix] = await Promise.all([ownSocketInodes(), unixInodes()]);
  return new Set([...own].filter((i) => unix.has(i)));
}

/** This process's unix sockets whose peer is a socket accepted on `path` (connections to that daemon). */
export async function socketsTo(path: string): Promise<Set<string>> {
  const [own, { stdout }] = await Promise.all([
    ownSocketInodes(),
    exec$("ss", ["-xnH"], { maxBuffer: 16 << 20 }),
  ]);
  // Netid State Recv-Q Send-Q Local-Address Local-Port(inode) Peer-Address Peer-Port(inode)
  const daemonSide = new Set<string>();
  const peerOf = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [local, inode, peer] = [f[4] as string, f[5] as string, f[7] as string];
    if (local === path) daemonSide.add(inode);
    peerOf.set(inode, peer);
  }
  return new Set([...own].filter((i) => daemonSide.has(peerOf.get(i) ?? "")));
}

export interface SocketWatch {
  /** Sockets to the daemon when the watch began (the call's connection among them). */
  readonly toDaemon: ReadonlySet<string>;
  /** How many sockets are still open that should not be: those that were connected to the daemon, and
   *  unix sockets opened since the watch began. Polls until none or `withinMs` passes. */
  leftover(withinMs?: number): Promise<number>;
}

/** Note this process's unix sockets now; `leftover()` later says what the call left open. */
export async function watchSockets(daemonPath: string, before: ReadonlySet<string>): Promise<SocketWatch> {
  const toDaemon = await socketsTo(daemonPath);
  return {
    toDaemon,
    async leftover(withinMs = 1000) {
      const end = Date.now() + withinMs;
      for (;;) {
        const now = await ownUnixSockets();
        const left = [...now].filter((i) => toDaemon.has(i) || !before.has(i)).length;
        if (left === 0 || Date.now() > end) return left;
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}
