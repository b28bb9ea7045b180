// run(): a one-off container on the object layer (container.ts, task.ts), as `ctr run --rm` does: pull
// if needed, create, start with FIFO stdio, collect the output, wait, and remove everything it made.
import { randomUUID } from "node:crypto";
import { parseImageRef } from "@berth/runtime-core";
import { onAbort } from "@berth/runtime-core/internal";
import type { ContainerdClient } from "./client.js";
import { type CreateContainerOptions, createContainer } from "./container.js";
import { isNotFound } from "./container-record.js";
import { getImage, type ImageInfo } from "./image.js";
import { type ContainerdPullOptions, pull } from "./pull.js";

/** Options of run(): createContainer()'s, plus the id, stdin and pulling. */
export interface ContainerdRunOptions extends CreateContainerOptions {
  /** Container id (default berth-<random>). */
  id?: string;
  /** Bytes written to stdin, then closed. */
  stdin?: string | Uint8Array;
  /** Pull when the image is not there yet (default true). */
  pull?: boolean | ContainerdPullOptions;
}

/** What run() resolves to. */
export interface ContainerdRunResult {
  /** The process's exit code. */
  exitCode: number;
  /** Its stdout, as UTF-8 text. */
  stdout: string;
  /** Its stderr, as UTF-8 text. */
  stderr: string;
}

/** The image `image` names, pulled first when it is missing (unless `pull` is false). */
async function imageFor(
  client: ContainerdClient,
  image: string,
  options: ContainerdRunOptions,
): Promise<ImageInfo> {
  const platform = options.platform ? { platform: options.platform } : {};
  try {
    return await getImage(client, parseImageRef(image).toString(), platform);
  } catch (err) {
    if (!isNotFound(err) || options.pull === false) throw err;
    const pulled = await pull(client, image, typeof options.pull === "object" ? options.pull : {});
    return getImage(client, pulled.name, platform);
  }
}

/** Pull if needed, create, start, collect the output, wait, and remove everything it created. */
export async function run(
  client: ContainerdClient,
  image: string,
  options: ContainerdRunOptions = {},
): Promise<ContainerdRunResult> {
  const info = await imageFor(client, image, options);
  const id = options.id ?? `berth-${randomUUID().slice(0, 12)}`;
  const container = await createContainer(client, info, id, options);
  try {
    const task = await container.newTask({ stdin: options.stdin !== undefined });
    const listening = onAbort(options.signal, () => task.kill("SIGKILL", { all: true }).catch(() => {}));
    try {
      const output = task.output();
      await task.start();
      if (options.stdin !== undefined) {
        task.stdin?.write(options.stdin);
        await task.closeStdin();
      }
      const { exitCode } = await task.wait();
      const { stdout, stderr } = await output;
      return { exitCode, stdout, stderr };
    } finally {
      listening.dispose();
      await task.delete().catch(() => {});
    }
  } finally {
    await container.delete();
  }
}
