// Every operation of the Engine API spec is a typed method on the client, grouped as users think.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { operations } from "../src/generated/operations.js";
import { DockerClient } from "../src/index.js";

const specsDir = process.env.BERTH_SPECS_DIR ?? join(import.meta.dirname, "../../../specs");
const spec = parse(readFileSync(join(specsDir, "docker/v1.51/swagger.yaml"), "utf8")) as {
  paths: Record<string, Record<string, { operationId?: string }>>;
};
const specIds = Object.values(spec.paths).flatMap((item) =>
  Object.values(item)
    .map((op) => op?.operationId)
    .filter((id): id is string => typeof id === "string"),
);

describe("operation coverage", () => {
  const docker = new DockerClient({ host: "unix:///nonexistent.sock", apiVersion: "1.51" });

  it("has one method per operation of the spec (107)", () => {
    expect(specIds).toHaveLength(107);
    const methods: string[] = [];
    for (const id of specIds) {
      const op = operations[id as keyof typeof operations];
      expect(op, id).toBeDefined();
      const group = (docker as unknown as Record<string, Record<string, unknown>>)[op.group];
      expect(typeof group?.[op.name], `${id} -> ${op.group}.${op.name}`).toBe("function");
      methods.push(`${op.group}.${op.name}`);
    }
    expect(new Set(methods).size).toBe(107);
  });

  it("groups operations the way users think", () => {
    const groups = new Set(Object.values(operations).map((o) => o.group));
    expect([...groups].sort()).toEqual(
      [
        "configs",
        "containers",
        "distribution",
        "exec",
        "images",
        "networks",
        "nodes",
        "plugins",
        "secrets",
        "services",
        "session",
        "swarm",
        "system",
        "tasks",
        "volumes",
      ].sort(),
    );
  });
});
