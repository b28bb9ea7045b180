// Path parameters are percent-encoded whole (a `/` as %2F): the real engines must still find an image by
// a name with a registry port, nested namespaces, a tag or a digest, for inspect, tag, push and remove;
// and a name that would climb out of its endpoint never reaches them.
import { randomBytes } from "node:crypto";
import { NotFoundError, ValidationError } from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerClient, pull } from "../src/index.js";

const env = process.env as Record<string, string>;
const image = env.BERTH_TEST_IMAGE ?? "";
const registry = env.BERTH_REGISTRY ?? "";
const run = randomBytes(4).toString("hex");

const targets = [
  { name: "docker", host: env.DOCKER_HOST },
  { name: "podman", host: env.PODMAN_HOST },
];

describe.each(targets)("$name: path parameters", ({ name, host }) => {
  const docker = new DockerClient({ host: host ?? "", backend: name });
  const repo = `${registry}/berth-path-${name}-${run}/ns/name`;

  beforeAll(async () => {
    await pull(docker, image);
  });

  afterAll(async () => {
    await docker.images.remove({ name: `${repo}:t1` }).catch(() => {});
    await docker.close();
  });

  it("inspects, tags, pushes and removes registry:port/ns/name:tag with the name %2F-encoded", async () => {
    const source = await docker.images.inspect({ name: image });
    await docker.images.tag({ name: image, repo, tag: "t1" });
    const tagged = await docker.images.inspect({ name: `${repo}:t1` });
    expect(tagged.Id).toBe(source.Id);
    const pushed: unknown[] = [];
    for await (const m of await docker.images.push({ name: repo, tag: "t1", registryAuth: {} }))
      pushed.push(m);
    expect(JSON.stringify(pushed)).toMatch(/digest: sha256:[0-9a-f]{64}/);
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(JSON.stringify(pushed))?.[1];
    if (name === "docker") {
      // Podman keeps no repo digest for a push; Docker finds the image by it.
      const byDigest = await docker.images.inspect({ name: `${repo}@${digest}` });
      expect(byDigest.Id).toBe(source.Id);
    }
    await docker.images.remove({ name: `${repo}:t1` });
    await expect(docker.images.inspect({ name: `${repo}:t1` })).rejects.toBeInstanceOf(NotFoundError);
    // The source image is untouched.
    expect((await docker.images.inspect({ name: image })).Id).toBe(source.Id);
  });

  it("a container name with a slash or a query in it is looked up as a name, not a route", async () => {
    await expect(docker.containers.inspect({ id: "json?all=1" })).rejects.toBeInstanceOf(NotFoundError);
    await expect(docker.containers.inspect({ id: "x/../../images/json" })).rejects.toBeInstanceOf(
      ValidationError,
    );
    await expect(docker.images.remove({ name: `${registry}/../x` })).rejects.toBeInstanceOf(ValidationError);
  });
});
