// Exec: create an exec instance, start it (over an upgraded connection when stdin is given, so stdin can
// be written and half-closed), read its output, and report its exit code.
import type { Readable } from "node:stream";
import { AbortedError, DaemonError, ProtocolError, TimeoutError } from "@berth/runtime-core";
import { deadline, signalOnly, sleep } from "@berth/runtime-core/internal";
import { num, objectOf, str } from "../answer.js";
import type { DockerClient } from "../client.js";
import type { FrameStream, StreamFrame, Upgraded } from "../operation.js";

/** Options of execStart() and execRun(). */
export interface DockerExecOptions {
  /** Extra environment, as KEY=VALUE strings. */
  env?: string[];
  /** Working directory of the command (default: the container's). */
  workdir?: string;
  /** "user", "uid", "uid:gid" or "user:group" (default: the container's). */
  user?: string;
  /** Allocate a pseudo-terminal: the output is then one raw stream (stdout). */
  tty?: boolean;
  /** Run with extended privileges (Docker's `exec --privileged`). */
  privileged?: boolean;
  /** Bytes for the process's stdin; it sees EOF after them. */
  stdin?: string | Uint8Array | Readable | AsyncIterable<Uint8Array>;
  /** Cancels the exec: an AbortedError once the signal fires (the process is not killed). */
  signal?: AbortSignal;
  /** Milliseconds for the whole exec; past it a TimeoutError is thrown (the process is not killed:
   *  Docker has no API for that). */
  timeout?: number;
}

/** What execRun() resolves to. */
export interface DockerExecResult {
  /** The command's exit code. */
  exitCode: number;
  /** Everything it wrote to stdout. */
  stdout: Buffer;
  /** Everything it wrote to stderr (empty with a TTY). */
  stderr: Buffer;
}

/** A started exec: its output stream and a way to learn the exit code once it ends. */
export interface ExecSession {
  /** The exec instance's id. */
  id: string;
  /** Its output: demultiplexed frames, or the raw upgraded connection (with stdin to write to). */
  output: FrameStream | Upgraded;
  /** The exit code, once the process has exited (waits for it). */
  exitCode(): Promise<number>;
}

/** Create and start an exec; with `stdin`, its bytes are written and stdin is then half-closed. */
export async function execStart(
  docker: DockerClient,
  containerId: string,
  cmd: string[],
  options: Omit<DockerExecOptions, "timeout"> = {},
): Promise<ExecSession> {
  const signalOpt = options.signal ? { signal: options.signal } : {};
  const withStdin = options.stdin !== undefined;
  const created = await docker.exec.create(
    {
      id: containerId,
      body: {
        Cmd: cmd,
        AttachStdin: withStdin,
        AttachStdout: true,
        AttachStderr: true,
        Tty: options.tty ?? false,
        ...(options.env ? { Env: options.env } : {}),
        ...(options.workdir ? { WorkingDir: options.workdir } : {}),
        ...(options.user ? { User: options.user } : {}),
        ...(options.privileged ? { Privileged: true } : {}),
      },
    },
    signalOpt,
  );
  const id = str(objectOf(created, "exec.create").Id);
  if (!id)
    throw new ProtocolError("exec.create: the daemon's answer has no Id", { operation: "exec.create" });
  const body = { Detach: false, Tty: options.tty ?? false };
  let output: FrameStream | Upgraded;
  if (withStdin) {
    const up = await docker.exec.startUpgraded({ id, body }, signalOpt);
    output = up;
    void feed(up, options.stdin as NonNullable<DockerExecOptions["stdin"]>).catch(() => up.close());
  } else {
    output = await docker.exec.start({ id, body }, signalOpt);
  }
  return {
    id,
    output,
    exitCode: async () => {
      // The output ends when the process exits, but the daemon may record the exit code a moment later.
      for (let i = 0; i < 100; i++) {
        const info = objectOf(await docker.exec.inspect({ id }, signalOpt), "exec.inspect");
        const exitCode = num(info.ExitCode);
        if (!info.Running && exitCode !== undefined) return exitCode;
        await sleep(
          Math.min(10 * 2 ** i, 200),
          options.signal,
          () => new AbortedError("exec aborted", { operation: "exec.inspect" }),
        );
      }
      throw new DaemonError(`exec ${id}: the daemon never reported an exit code`, {
        operation: "exec.inspect",
      });
    },
  };
}

/** Run a command in a running container and collect its output and exit code. */
export async function execRun(
  docker: DockerClient,
  containerId: string,
  cmd: string[],
  options: DockerExecOptions = {},
): Promise<DockerExecResult> {
  // The caller's signal and the timeout as one signal: the deadline aborts the exec's calls and stream.
  const limit = deadline(options.signal, options.timeout);
  try {
    const session = await execStart(docker, containerId, cmd, { ...options, ...signalOnly(limit) });
    const { stdout, stderr } = await collect(session.output);
    return { exitCode: await session.exitCode(), stdout, stderr };
  } catch (err) {
    if (!limit.expired) throw err;
    throw new TimeoutError(`exec ${cmd.join(" ")}: did not finish in ${options.timeout} ms`, {
      operation: "exec",
      cause: err,
    });
  } finally {
    limit.dispose();
  }
}

/** Reads frames to their end and joins each stream's bytes. */
export async function collect(frames: AsyncIterable<StreamFrame>): Promise<{
  /** Everything written to stdout. */
  stdout: Buffer;
  /** Everything written to stderr. */
  stderr: Buffer;
}> {
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  for await (const f of frames) (f.stream === "stderr" ? err : out).push(f.data);
  return { stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
}

async function feed(up: Upgraded, stdin: NonNullable<DockerExecOptions["stdin"]>): Promise<void> {
  if (typeof stdin === "string" || stdin instanceof Uint8Array) {
    await up.write(stdin);
  } else {
    for await (const chunk of stdin as AsyncIterable<Uint8Array>) await up.write(chunk);
  }
  up.end();
}
