#!/usr/bin/env node
// berth's task logger for containerd, started by the shim for a task whose stdio is
//   binary://<node>?<this file>=<log file>
// (containerd-shim-runc-v2 runs `<node> <this file> <log file>` with the task's stdout on fd 3, its
// stderr on fd 4, and a pipe on fd 5 to close once we are ready). Output is appended to the log file as
// CRI log records, binary-safe.
//
// The shim keeps the pipes' write ends until the task is deleted, so EOF does not come when the
// container exits. The end of the output is therefore marked by us: "<log>.done" is created once
// everything the container wrote is in the log. That happens when
//   - a reader that saw the task stopped creates "<log>.drain" (the container has exited, so whatever is
//     left in the pipes is all there will be: read it without waiting, then mark done);
//   - the container's init process is gone (best effort: the shim runs us in the task's bundle directory,
//     where init.pid names it);
//   - stdout reaches EOF (the task was deleted; with a tty, the console closed), or the shim sends SIGTERM.
// Then we exit. Nothing goes to our own stdout or stderr (the shim discards them): a failure to start is
// written to "<log>.error" for the runtime to report.
import {
  closeSync,
  constants,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  watch,
  writeFileSync,
  writeSync,
} from "node:fs";
import { Socket } from "node:net";
import { basename, dirname } from "node:path";

const logPath = process.argv[2] ?? "";
const donePath = `${logPath}.done`;
const drainPath = `${logPath}.drain`;
const errorPath = `${logPath}.error`;

let format;
let out;
try {
  if (!logPath.startsWith("/"))
    throw new Error(`usage: logger.mjs <absolute log path>, got ${JSON.stringify(logPath)}`);
  ({ formatCriLogRecords: format } = await import("@berth/runtime-core/internal"));
  // Appended to, never through a symlink at its name (the runtime made the file; a link is not its).
  out = openSync(
    logPath,
    constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW,
    0o640,
  );
} catch (err) {
  try {
    if (logPath.startsWith("/")) writeFileSync(errorPath, `berth logger: ${err?.stack ?? err}\n`);
  } catch {}
  process.exit(1);
}

let writeFailed = false;
function append(stream, chunk) {
  if (chunk.length === 0) return;
  const buf = format(stream, chunk);
  try {
    for (let off = 0; off < buf.length; ) off += writeSync(out, buf, off);
  } catch (err) {
    // Disk full, say: the output is lost, but we keep reading, so the container is not killed by a
    // broken pipe. The first failure is noted beside the log.
    if (writeFailed) return;
    writeFailed = true;
    try {
      writeFileSync(
        errorPath,
        `berth logger: writing the log failed, output dropped: ${err?.message ?? err}\n`,
      );
    } catch {}
  }
}

const sources = [
  { fd: 3, stream: "stdout", open: true },
  { fd: 4, stream: "stderr", open: true },
];

/** Read what the pipes hold right now (libuv made them non-blocking), without waiting for more: first
 *  what the socket has read but not yet emitted, then what is still in the pipe. */
function readLeft() {
  const buf = Buffer.allocUnsafe(64 * 1024);
  for (const s of sources) {
    s.socket?.pause();
    for (let chunk = s.socket?.read(); chunk; chunk = s.socket?.read()) append(s.stream, chunk);
    while (s.open) {
      let n = 0;
      try {
        n = readSync(s.fd, buf, 0, buf.length, null);
      } catch {
        break; // EAGAIN: empty for now, and nothing more is coming
      }
      if (n === 0) break;
      append(s.stream, buf.subarray(0, n));
    }
  }
}

let finished = false;
function finish() {
  if (finished) return;
  finished = true;
  try {
    readLeft();
    closeSync(out);
    writeFileSync(donePath, "");
  } finally {
    process.exit(0);
  }
}

for (const s of sources) {
  const socket = new Socket({ fd: s.fd, readable: true, writable: false });
  s.socket = socket;
  socket.on("data", (chunk) => append(s.stream, chunk));
  socket.on("error", () => {
    s.open = false;
  });
  socket.on("end", () => {
    // The socket closes its fd after this: never read it again.
    s.open = false;
    if (s.stream === "stdout") finish();
  });
}

process.on("SIGTERM", finish);
process.on("SIGINT", finish);

try {
  const name = basename(drainPath);
  watch(dirname(logPath), (_event, file) => {
    if (file === name && existsSync(drainPath)) finish();
  }).on("error", () => {});
} catch {
  // No inotify: the timer below still sees the request.
}

let initPid;
setInterval(() => {
  if (existsSync(drainPath)) return finish();
  try {
    initPid ??= Number(readFileSync("init.pid", "utf8").trim()) || undefined;
  } catch {}
  if (initPid === undefined) return;
  try {
    process.kill(initPid, 0);
  } catch (err) {
    if (err.code === "ESRCH") finish();
  }
}, 1000);

// Ready: the shim starts the container once this pipe closes.
closeSync(5);
