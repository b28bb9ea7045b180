// Log paths a runtime or a container record names (a CRI container's log file and pod log directory, a
// containerd container's log) are used by the adapters only inside the log root they were configured
// with: a daemon's answer, or a record anyone with the socket can write, cannot make them write or delete
// elsewhere. Symlinks are resolved in the directories; the last component is never followed.
import { lstat, mkdir, realpath } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";

/**
 * `path` with its directories' symlinks resolved, if it lies inside `root` (itself resolved); else
 * undefined (a relative path, one naming `.` or `..` last, or a directory that does not exist included).
 * The last component is not resolved: it may be a symlink, or not exist yet.
 */
export async function pathInside(root: string, path: string): Promise<string | undefined> {
  const name = basename(path);
  if (!isAbsolute(path) || name === "" || name === "." || name === "..") return undefined;
  try {
    const [realRoot, parent] = await Promise.all([realpath(root), realpath(dirname(path))]);
    const rel = relative(realRoot, parent);
    if (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return undefined;
    return join(parent, name);
  } catch {
    return undefined;
  }
}

/** The regular file `path` names, inside `root`; undefined for anything else (a symlink included). */
export async function logFileInside(root: string, path: string): Promise<string | undefined> {
  const resolved = await pathInside(root, path);
  if (!resolved) return undefined;
  const st = await lstat(resolved).catch(() => undefined);
  return st?.isFile() ? resolved : undefined;
}

/** The directory `path` names, if it is one (not a symlink) directly inside `root`. */
export async function logDirectoryInside(root: string, path: string): Promise<string | undefined> {
  const resolved = await pathInside(root, path);
  if (!resolved || dirname(resolved) !== (await realpath(root).catch(() => undefined))) return undefined;
  const st = await lstat(resolved).catch(() => undefined);
  return st?.isDirectory() ? resolved : undefined;
}

/**
 * Makes `dir` and whatever is missing of it below `root` (which is made as given, a symlink allowed: the
 * caller configured it), one component at a time, never through a symlink or anything but a directory.
 * Resolves to false, having made nothing past that point, when `dir` does not lie below `root` or one of
 * its components is not a directory of its own.
 */
export async function makeDirectoryInside(root: string, dir: string, mode = 0o750): Promise<boolean> {
  const rel = relative(resolve(root), resolve(dir));
  if (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return false;
  await mkdir(root, { recursive: true, mode });
  let at = resolve(root);
  for (const part of rel === "" ? [] : rel.split(sep)) {
    at = join(at, part);
    await mkdir(at, { mode }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
    });
    if (!(await lstat(at)).isDirectory()) return false;
  }
  return true;
}
