// A container record is anyone's to write who has the containerd socket (another client, a compromised
// tool): ContainerdRuntime must not let the log path a record names make it append to, create or delete
// files outside its own log directory. Another client rewrites berth's extension of a record to name a
// victim file; a symlink planted where a container's log goes points at one too.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ContainerSpec, NotFoundError, ValidationError } from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContainerdClient, ContainerdRuntime } from "../src/index.js";
import { destroyNamespace, testClient } from "./helpers.js";

const IMAGE = process.env.BERTH_TEST_IMAGE as string;
const runtime = { root: process.env.BERTH_RUNC_ROOT as string };
const base = mkdtempSync(join(tmpdir(), "berth-logpath-hostile-"));
const logDir = join(base, "logs");
const outside = join(base, "outside");
mkdirSync(outside);

const client = testClient();
const namespace = client.namespace;
/** Another client on the same socket: the one that writes the hostile record. */
const hostile = ContainerdClient.fromEnv().withNamespace(namespace);
const rt = new ContainerdRuntime(client, { logDir, runtime });
const spec = (): ContainerSpec => ({ image: IMAGE, command: ["sh", "-c", "echo pwned"] });

/** What berth keeps in a record's extensions, rewritten by another client to name `logPath`. */
async function rewriteLogPath(id: string, logPath: string): Promise<void> {
  await hostile.containers.update({
    container: {
      id,
      extensions: {
        "berth.containerd.runtime": {
          typeUrl: "berth.dev/containerd-runtime/v1",
          value: Buffer.from(JSON.stringify({ logPath })),
        },
      },
    },
    updateMask: ["extensions.berth.containerd.runtime"],
  });
}

function victim(name: string): string {
  const path = join(outside, name);
  writeFileSync(path, "precious\n");
  return path;
}

beforeAll(async () => {
  await rt.pull(IMAGE);
}, 120_000);

afterAll(async () => {
  for (const c of await rt.list({ all: true }).catch(() => []))
    await rt.remove(c.id, { force: true }).catch(() => {});
  await destroyNamespace(client);
  await rt.close();
  hostile.close();
  rmSync(base, { recursive: true, force: true });
});

const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

describe("a record whose log path leaves the log directory", () => {
  it("start() appends to nothing outside it, and creates no directory there", async () => {
    const id = await rt.create(spec());
    const target = victim("start.log");
    await rewriteLogPath(id, target);
    const err = await failure(rt.start(id));
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as Error).message).toContain(logDir);
    // A path in a directory that does not exist: start() made it before.
    await rewriteLogPath(id, join(outside, "made", "by", "berth", "container.log"));
    expect(await failure(rt.start(id))).toBeInstanceOf(ValidationError);
    await new Promise((r) => setTimeout(r, 500));
    expect(readFileSync(target, "utf8")).toBe("precious\n");
    expect(existsSync(join(outside, "made"))).toBe(false);
    await rt.remove(id, { force: true });
  }, 60_000);

  it("logs() reads nothing outside it", async () => {
    const id = await rt.create(spec());
    await rewriteLogPath(id, victim("logs.log"));
    const err = await failure(
      (async () => {
        for await (const _ of rt.logs(id)) {
          // read
        }
      })(),
    );
    expect(err).toBeInstanceOf(ValidationError);
    await rt.remove(id);
  }, 60_000);

  it("remove() deletes nothing outside it, and still removes the container", async () => {
    const id = await rt.create(spec());
    const target = victim("remove.log");
    for (const marker of [".done", ".drain", ".error"]) writeFileSync(`${target}${marker}`, "keep");
    await rewriteLogPath(id, target);
    await rt.remove(id);
    expect(readFileSync(target, "utf8")).toBe("precious\n");
    for (const marker of [".done", ".drain", ".error"]) expect(existsSync(`${target}${marker}`)).toBe(true);
    expect(await failure(rt.inspect(id))).toBeInstanceOf(NotFoundError);
  }, 60_000);

  it("a log path of the runtime's own shape, for another container, is refused too", async () => {
    const other = await rt.create(spec());
    const id = await rt.create(spec());
    const othersLog = join(logDir, namespace, other, "container.log");
    writeFileSync(othersLog, "");
    await rewriteLogPath(id, othersLog);
    await rt.remove(id);
    expect(existsSync(othersLog)).toBe(true);
    await rt.remove(other);
    expect(existsSync(othersLog)).toBe(false);
  }, 60_000);
});

describe("a symlink where a container's log goes", () => {
  it("is neither followed by start() nor its target deleted by remove()", async () => {
    const id = await rt.create(spec());
    const own = join(logDir, namespace, id, "container.log");
    const target = victim("symlinked.log");
    unlinkSync(own);
    symlinkSync(target, own);
    const err = await failure(rt.start(id));
    expect(err).toBeInstanceOf(ValidationError);
    await new Promise((r) => setTimeout(r, 500));
    expect(readFileSync(target, "utf8")).toBe("precious\n");
    await rt.remove(id, { force: true });
    expect(readFileSync(target, "utf8")).toBe("precious\n");
  }, 60_000);

  it("a container directory that is a symlink out of the log directory is not written through", async () => {
    const id = await rt.create(spec());
    const dir = join(logDir, namespace, id);
    rmSync(dir, { recursive: true });
    const elsewhere = join(outside, "dir-target");
    mkdirSync(elsewhere);
    symlinkSync(elsewhere, dir);
    const err = await failure(rt.start(id));
    expect(err).toBeInstanceOf(ValidationError);
    await rt.remove(id, { force: true });
    expect(existsSync(join(elsewhere, "container.log"))).toBe(false);
  }, 60_000);
});
