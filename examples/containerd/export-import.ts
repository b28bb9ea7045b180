// Export an image from containerd as an OCI archive file (also loadable by `docker load`), then import that
// file into another namespace and run it there.
//   CONTAINERD_ADDRESS=/run/containerd/containerd.sock tsx containerd/export-import.ts [image] [archive.tar]
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import {
  ContainerdClient,
  exportImage,
  importImage,
  pull,
  removeNamespace,
  run,
  withProcessArgs,
} from "@berth/containerd-client";

const image = process.argv[2] ?? process.env.BERTH_TEST_IMAGE ?? "docker.io/library/busybox:latest";
const file = process.argv[3] ?? join(tmpdir(), `berth-export-${process.pid}.tar`);
const client = ContainerdClient.fromEnv(process.env, {
  namespace: process.env.BERTH_EXAMPLE_NAMESPACE ?? "berth-examples",
});
const target = client.withNamespace(`${client.namespace}-imported`);
try {
  await pull(client, image, { unpack: false });
  // The archive streams out of the content store blob by blob: nothing is held in memory.
  await pipeline(await exportImage(client, image, { format: "docker" }), createWriteStream(file));
  console.log(`exported ${image} to ${file}`);

  const imported = await importImage(target, file, {
    unpack: true,
    onProgress: (e) => {
      if (e.type === "blob-done") console.log(`blob ${e.digest.slice(0, 19)} ${e.size} bytes`);
    },
  });
  for (const i of imported) console.log(`imported ${i.name} as ${i.target.digest}`);

  const result = await run(target, image, {
    pull: false,
    spec: [withProcessArgs("echo", "hello from the imported image")],
    ...(process.env.BERTH_RUNC_ROOT ? { runtime: { root: process.env.BERTH_RUNC_ROOT } } : {}),
  });
  process.stdout.write(result.stdout);
} finally {
  await removeNamespace(target).catch(() => {});
  if (process.argv[3] === undefined) await rm(file, { force: true });
  client.close();
}
