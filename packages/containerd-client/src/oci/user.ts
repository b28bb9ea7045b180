// Resolving an image's "user[:group]" to numeric IDs with the rootfs's /etc/passwd and /etc/group, as
// containerd's WithUser does: numeric IDs are taken as they are; names must exist.
import { ValidationError } from "@berth/runtime-core";

/** Largest /etc/passwd or /etc/group read from an image (both come from the image: untrusted). */
export const MAX_USER_DB_BYTES = 1024 * 1024;

/** A user spec resolved to numeric ids, as an OCI process spec needs them. */
export interface ResolvedUser {
  /** The user id. */
  uid: number;
  /** The primary group id. */
  gid: number;
  /** Supplementary group ids (the user's groups from /etc/group). */
  additionalGids: number[];
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}
interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** The colon-separated fields of each line of an /etc/passwd or /etc/group text that has at least `min`
 *  of them; comments and shorter lines are skipped. */
function* lines(text: string, min: number): Generator<string[]> {
  for (const line of text.split("\n")) {
    const f = line.trim().split(":");
    if (f.length >= min && !line.startsWith("#")) yield f;
  }
}

/** The entries of an /etc/passwd text (malformed lines and comments skipped). */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const f of lines(text, 4)) {
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (Number.isInteger(uid) && Number.isInteger(gid)) out.push({ name: f[0] as string, uid, gid });
  }
  return out;
}

/** The entries of an /etc/group text (malformed lines and comments skipped). */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const f of lines(text, 3)) {
    const gid = Number(f[2]);
    if (Number.isInteger(gid)) {
      out.push({ name: f[0] as string, gid, members: (f[3] ?? "").split(",").filter(Boolean) });
    }
  }
  return out;
}

const NUMERIC = /^\d+$/;

/** Resolve "", "1000", "app", "app:staff", "1000:50" against passwd and group file contents. */
export function resolveUser(user: string, passwd = "", group = ""): ResolvedUser {
  const [u = "", g] = user.split(":", 2);
  const users = parsePasswd(passwd);
  const groups = parseGroup(group);
  let uid = 0;
  let gid = 0;
  let name: string | undefined;
  if (u === "") {
    name = users.find((e) => e.uid === 0)?.name;
  } else if (NUMERIC.test(u)) {
    uid = Number(u);
    const entry = users.find((e) => e.uid === uid);
    gid = entry?.gid ?? 0;
    name = entry?.name;
  } else {
    const entry = users.find((e) => e.name === u);
    if (!entry) {
      throw new ValidationError(`user ${JSON.stringify(u)} is not in the image's /etc/passwd`, {
        operation: "oci.withUser",
      });
    }
    ({ uid, gid, name } = entry);
  }
  if (g !== undefined && g !== "") {
    if (NUMERIC.test(g)) gid = Number(g);
    else {
      const entry = groups.find((e) => e.name === g);
      if (!entry) {
        throw new ValidationError(`group ${JSON.stringify(g)} is not in the image's /etc/group`, {
          operation: "oci.withUser",
        });
      }
      gid = entry.gid;
    }
  }
  const additionalGids =
    name === undefined
      ? []
      : [...new Set(groups.filter((e) => e.members.includes(name) && e.gid !== gid).map((e) => e.gid))];
  return { uid, gid, additionalGids };
}
