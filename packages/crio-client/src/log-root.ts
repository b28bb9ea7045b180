// Paths the runtime reports (a container's log file, a pod's log directory) are deleted by this adapter
// only inside the log root it was configured with: a runtime's answer cannot make it delete elsewhere.
// Symlinks are resolved in the directories; the last component is never followed.
import { lstat, realpath } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, sep } from "node:path";

/** `path` with its directories' symlinks resolved, if it lies inside `root` (itself resolved); else undefined. */
async function resolveInside(root: string, path: string): Promise<string | undefined> {
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
  const resolved = await resolveInside(root, path);
  if (!resolved) return undefined;
  const st = await lstat(resolved).catch(() => undefined);
  return st?.isFile() ? resolved : undefined;
}

/** The directory `path` names, if it is one (not a symlink) directly inside `root`. */
export async function logDirectoryInside(root: string, path: string): Promise<string | undefined> {
  const resolved = await resolveInside(root, path);
  if (!resolved || dirname(resolved) !== (await realpath(root).catch(() => undefined))) return undefined;
  const st = await lstat(resolved).catch(() => undefined);
  return st?.isDirectory() ? resolved : undefined;
}
