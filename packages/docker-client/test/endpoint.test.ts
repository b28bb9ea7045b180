import { UnavailableError, ValidationError } from "@berth/runtime-core";
import { describe, expect, it } from "vitest";
import { DockerClient, parseDockerHost } from "../src/index.js";

describe("parseDockerHost", () => {
  it("understands the DOCKER_HOST forms", () => {
    expect(parseDockerHost("unix:///var/run/docker.sock")).toMatchObject({
      origin: "http://localhost",
      socketPath: "/var/run/docker.sock",
    });
    expect(parseDockerHost("/run/podman/podman.sock").socketPath).toBe("/run/podman/podman.sock");
    expect(parseDockerHost("tcp://10.0.0.1").origin).toBe("http://10.0.0.1:2375");
    expect(parseDockerHost("tcp://10.0.0.1", { verify: true }).origin).toBe("https://10.0.0.1:2376");
    expect(parseDockerHost("https://host:9999").origin).toBe("https://host:9999");
  });

  it("rejects what it does not know with a ValidationError", () => {
    expect(() => parseDockerHost("npipe:////./pipe/docker_engine")).toThrow(ValidationError);
    expect(() => parseDockerHost("unix://")).toThrow(ValidationError);
  });
});

describe("DockerClient without a daemon", () => {
  it("fails within a second with Unavailable naming the socket path", async () => {
    const docker = new DockerClient({ host: "unix:///nonexistent/berth-test.sock" });
    const started = Date.now();
    const err = await docker.system.version().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toContain("/nonexistent/berth-test.sock");
    expect(Date.now() - started).toBeLessThan(1_000);
    await docker.close();
  });

  it("refuses a missing path parameter before sending anything", async () => {
    const docker = new DockerClient({ host: "unix:///nonexistent/berth-test.sock", apiVersion: "1.41" });
    await expect(docker.containers.inspect({ id: "" })).rejects.toBeInstanceOf(ValidationError);
    await docker.close();
  });
});
