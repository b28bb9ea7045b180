// Files inside a root the caller does not control (an image's rootfs, a running container's /proc/<pid>/root,
// an unpacked layout): every path component is looked up by us, one at a time, relative to a directory we
// hold open, so neither a symlink (absolute, or a `../` chain) nor a `..` can leave the root, as
// containerd's Go client does with a root-scoped resolver. Symlinks are re-rooted: an absolute target
// starts again at the root, `..` stops at it; after too many hops the path is refused, as the kernel
// refuses ELOOP. Each lookup goes through /proc/self/fd/<dir>/<name> with O_NOFOLLOW (openat() semantics,
// which Node lacks), so a tree that changes while we walk it (a running container) cannot swap a
// directory for a symlink between our check and our open. Only regular files are opened (a FIFO would
// block, a device never end) and what is read has a cap. Linux only, as containerd is.
import { constants } from "node:fs";
import { type FileHandle, lstat, open, readlink } from "node:fs/promises";
import { join } from "node:path";
import { NotFoundError, UnsupportedError, ValidationError } from "@berth/runtime-core";

const BACKEND = "containerd";

/** Symlinks followed in one path before it is refused (Linux's MAXSYMLINKS). */
export const MAX_SYMLINK_HOPS = 40;

/** How resolveInRoot and openInRoot walk a path inside a root. */
export interface InRootOptions {
  /** Names the operation in errors (default "rootfs"). */
  operation?: string;
  /** Symlinks followed before the path is refused as a loop, a ValidationError (default MAX_SYMLINK_HOPS). */
  maxHops?: number;
}

/** How readFileInRoot and readTextInRoot read a file inside a root: the walk's options and a size cap. */
export interface ReadInRootOptions extends InRootOptions {
  /** Largest file read, in bytes; a larger one (or one growing past it while read) is a ValidationError. */
  maxBytes: number;
}

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = constants;
const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
// O_NONBLOCK and O_NOCTTY: should a FIFO or terminal be swapped in after our lstat, opening it neither
// waits for a writer nor takes it as our controlling terminal (fstat then refuses it).
const FILE_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
const READ_CHUNK = 64 * 1024;

const at = (dir: FileHandle, name: string) => `/proc/self/fd/${dir.fd}/${name}`;
const components = (path: string) => path.split("/").filter((c) => c !== "" && c !== ".");
const errno = (err: unknown) => (err as { code?: unknown }).code;
const operationOf = (options: InRootOptions) => options.operation ?? "rootfs";

/** The last component of a path resolved inside a root: its directory (held open) and its name. */
interface Resolved {
  /** Open directories from the root down; the last one holds `name`. Close with `release`. */
  dirs: FileHandle[];
  /** The directory names below the root, for the host path. */
  names: string[];
  /** Undefined when the path names the root or a directory reached by `..`. */
  name: string | undefined;
}

async function release(dirs: readonly FileHandle[]): Promise<void> {
  await Promise.all(dirs.map((d) => d.close().catch(() => {})));
}

/** Walk `path` inside `root`, following symlinks re-rooted, up to the last component (not followed). */
async function walk(root: string, path: string, options: InRootOptions): Promise<Resolved> {
  const operation = operationOf(options);
  const maxHops = options.maxHops ?? MAX_SYMLINK_HOPS;
  if (process.platform !== "linux") {
    throw new UnsupportedError(`${operation}: reading inside a root needs Linux`, {
      operation,
      backend: BACKEND,
    });
  }
  const notFound = (cause?: unknown) =>
    new NotFoundError(`${operation}: ${path} is not in ${root}`, { operation, backend: BACKEND, cause });
  const dirs: FileHandle[] = [];
  const names: string[] = [];
  try {
    // The root itself is the caller's: it may be a symlink (/proc/<pid>/root is one).
    dirs.push(await open(root, O_RDONLY | O_DIRECTORY).catch((cause) => Promise.reject(notFound(cause))));
    const pending = components(path);
    let hops = 0;
    for (;;) {
      const name = pending.shift();
      if (name === undefined) return { dirs, names, name: undefined };
      if (name === "..") {
        // Never the kernel's "..": our own parent, and none above the root.
        if (dirs.length > 1) {
          await (dirs.pop() as FileHandle).close();
          names.pop();
        }
        continue;
      }
      const dir = dirs[dirs.length - 1] as FileHandle;
      const st = await lstat(at(dir, name)).catch((cause: unknown) => {
        throw errno(cause) === "ENOENT" ? notFound(cause) : unexpected(operation, path, cause);
      });
      if (st.isSymbolicLink()) {
        if (++hops > maxHops) {
          throw new ValidationError(
            `${operation}: ${path} follows more than ${maxHops} symlinks (a loop?) in ${root}`,
            { operation, backend: BACKEND },
          );
        }
        const target = await readlink(at(dir, name)).catch((cause: unknown) => {
          throw errno(cause) === "ENOENT" ? notFound(cause) : unexpected(operation, path, cause);
        });
        if (target.startsWith("/")) {
          await release(dirs.splice(1));
          names.length = 0;
        }
        pending.unshift(...components(target));
        continue;
      }
      if (pending.length === 0) return { dirs, names, name };
      if (!st.isDirectory()) throw notFound();
      // O_NOFOLLOW: a directory swapped for a symlink since the lstat fails here (ELOOP) instead of
      // being followed; the walk is then refused rather than retried.
      const next = await open(at(dir, name), DIR_FLAGS).catch((cause: unknown) => {
        throw errno(cause) === "ENOENT" ? notFound(cause) : unexpected(operation, path, cause);
      });
      dirs.push(next);
      names.push(name);
    }
  } catch (err) {
    await release(dirs);
    throw err;
  }
}

/** The file at `path` inside `root` is not one that can be read. */
function refused(operation: string, root: string, path: string, why: string): ValidationError {
  return new ValidationError(`${operation}: ${path} in ${root} ${why}`, { operation, backend: BACKEND });
}

function unexpected(operation: string, path: string, cause: unknown): ValidationError {
  const code = errno(cause);
  return new ValidationError(
    `${operation}: cannot read ${path}: ${typeof code === "string" ? code : (cause as Error).message}`,
    { operation, backend: BACKEND, cause },
  );
}

/**
 * Resolve `path` inside `root` as the container would see it (symlinks re-rooted, `..` clamped) and
 * return the host path it names now. The answer is only as good as the moment: to read, use
 * `openInRoot`, which holds what it resolved. A missing component is a NotFoundError.
 */
export async function resolveInRoot(
  root: string,
  path: string,
  options: InRootOptions = {},
): Promise<string> {
  const { dirs, names, name } = await walk(root, path, options);
  await release(dirs);
  return join(root, ...names, name ?? "");
}

/**
 * Open the regular file at `path` inside `root` for reading. Missing: NotFoundError; a directory, FIFO,
 * socket or device, or a symlink loop: ValidationError. The caller closes the handle.
 */
export async function openInRoot(
  root: string,
  path: string,
  options: InRootOptions = {},
): Promise<FileHandle> {
  const operation = operationOf(options);
  const notRegular = (what: string) => refused(operation, root, path, `is not a regular file (${what})`);
  const { dirs, name } = await walk(root, path, options);
  try {
    if (name === undefined) throw notRegular("a directory");
    const dir = dirs[dirs.length - 1] as FileHandle;
    // Refused before opening: opening a device may have effects of its own (a tape rewinds).
    const before = await lstat(at(dir, name)).catch((cause: unknown) => {
      throw unexpected(operation, path, cause);
    });
    if (!before.isFile()) throw notRegular(kind(before));
    const handle = await open(at(dir, name), FILE_FLAGS).catch((cause: unknown) => {
      throw unexpected(operation, path, cause);
    });
    const st = await handle.stat();
    if (!st.isFile() || st.ino !== before.ino || st.dev !== before.dev) {
      await handle.close();
      throw notRegular(st.isFile() ? "replaced while opened" : kind(st));
    }
    return handle;
  } finally {
    await release(dirs);
  }
}

/** Read at most `maxBytes` of the regular file at `path` inside `root` (see openInRoot). */
export async function readFileInRoot(
  root: string,
  path: string,
  options: ReadInRootOptions,
): Promise<Buffer> {
  const operation = operationOf(options);
  const tooBig = () => refused(operation, root, path, `is larger than ${options.maxBytes} bytes`);
  const handle = await openInRoot(root, path, options);
  try {
    // The size is checked first (no read of a huge file) and the read is capped anyway (a file can grow).
    if ((await handle.stat()).size > options.maxBytes) throw tooBig();
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, options.maxBytes + 1 - total));
      const { bytesRead } = await handle.read(buffer, 0, buffer.byteLength, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > options.maxBytes) throw tooBig();
      chunks.push(buffer.subarray(0, bytesRead));
    }
    return Buffer.concat(chunks, total);
  } finally {
    await handle.close();
  }
}

/** The text of the file at `path` inside `root` (see readFileInRoot), or undefined when there is none. */
export async function readTextInRoot(
  root: string,
  path: string,
  options: ReadInRootOptions,
): Promise<string | undefined> {
  try {
    return (await readFileInRoot(root, path, options)).toString("utf8");
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

function kind(st: {
  isDirectory(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
  isSymbolicLink(): boolean;
}) {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO";
  if (st.isSocket()) return "a socket";
  if (st.isSymbolicLink()) return "a symlink";
  return "a device";
}
