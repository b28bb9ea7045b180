import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { operations } from "../../packages/docker-client/src/generated/operations.ts";
import type { OperationSpec } from "../../packages/docker-client/src/operation.ts";
import {
  buildDockerFiles,
  checkTable,
  dockerOutDir,
  dockerTable,
  dockerVariants,
  loadDockerSpec,
  specOperations,
} from "./docker.ts";

const spec = loadDockerSpec();
const specOps = specOperations(spec);
const table: Record<string, OperationSpec> = operations;
const files = buildDockerFiles();
const generated = Object.values(table);

describe("docker operation table", () => {
  it("has exactly the spec's operations", () => {
    expect(specOps).toHaveLength(107);
    expect(generated).toHaveLength(specOps.length + Object.keys(dockerVariants).length);
    expect(Object.keys(dockerTable).sort()).toEqual(specOps.map((o) => o.id).sort());
    for (const op of specOps) {
      const row = table[op.id];
      expect(row, op.id).toBeDefined();
      expect(row?.method).toBe(op.method);
      expect(row?.path).toBe(op.path);
    }
  });

  it("reads exec with stdin as an upgraded connection: a variant row of ExecStart", () => {
    expect(table.ExecStartUpgraded).toEqual({
      ...table.ExecStart,
      name: "startUpgraded",
      response: "upgrade",
    });
    expect(table.ExecStart?.response).toBe("stream");
  });

  it("gives every operation a group, a name and a response kind", () => {
    const kinds = ["json", "text", "empty", "ndjson", "stream", "tar", "upgrade"];
    for (const op of generated) {
      expect(op.group, op.id).toMatch(/^[a-z]+$/);
      expect(op.name, op.id).toMatch(/^[a-z][A-Za-z]*$/);
      expect(kinds, op.id).toContain(op.response);
    }
  });

  it("keeps method names unique within a group", () => {
    const seen = new Map<string, string>();
    for (const op of generated) {
      const key = `${op.group}.${op.name}`;
      expect(seen.get(key), `${op.id} and ${seen.get(key)} are both ${key}`).toBeUndefined();
      seen.set(key, op.id);
    }
  });

  it("has a required path parameter for every placeholder", () => {
    for (const op of generated) {
      for (const m of op.path.matchAll(/\{([^}]+)\}/g)) {
        const p = op.params.find((x) => x.in === "path" && x.wire === m[1]);
        expect(p?.required, `${op.id} {${m[1]}}`).toBe(true);
      }
      for (const p of op.params.filter((x) => x.in === "path")) {
        expect(op.path, op.id).toContain(`{${p.wire}}`);
      }
    }
  });

  it("sends filters as JSON and registry credentials as base64 JSON", () => {
    let filters = 0;
    let auth = 0;
    for (const op of generated) {
      for (const p of op.params) {
        if (p.in === "query" && p.wire === "filters") {
          filters++;
          expect(p.encoding, op.id).toBe("json");
        }
        if (p.in === "header" && /^x-registry-(auth|config)$/i.test(p.wire)) {
          auth++;
          expect(p.encoding, op.id).toBe("base64json");
          expect(p.name).toMatch(/^registry(Auth|Config)$/);
        }
      }
    }
    expect(filters).toBeGreaterThan(15);
    expect(auth).toBeGreaterThan(5);
    expect(table.ImageBuild?.params.find((p) => p.wire === "buildargs")?.encoding).toBe("json");
  });

  it("reads the streaming and archive operations the right way", () => {
    expect(table.ImageCreate).toMatchObject({ group: "images", name: "pull", response: "ndjson" });
    expect(table.ImageBuild).toMatchObject({
      response: "ndjson",
      body: "tar",
      bodyContentType: "application/x-tar",
    });
    expect(table.ContainerArchiveInfo).toMatchObject({ method: "HEAD", response: "empty" });
    expect(table.ContainerAttach?.response).toBe("upgrade");
    expect(table.ContainerLogs?.response).toBe("stream");
    expect(table.ContainerExport?.response).toBe("tar");
    expect(table.SystemPing?.response).toBe("text");
    expect(table.PutContainerArchive?.body).toBe("tar");
  });

  it("marks operations newer than v1.41", () => {
    expect(table.VolumeUpdate?.minVersion).toBe("1.42");
    expect(table.ContainerList?.minVersion).toBeUndefined();
  });

  it("refuses a table that misses or invents an operation", () => {
    const { ContainerList: _dropped, ...missing } = dockerTable;
    expect(() => checkTable(specOps, missing)).toThrow(/missing from the table: ContainerList/);
    const invented = {
      ...dockerTable,
      ContainerTeleport: { group: "containers", name: "teleport", response: "json" },
    } as const;
    expect(() => checkTable(specOps, invented)).toThrow(/the spec lacks: ContainerTeleport/);
    const stray = { ExecTeleport: { ...dockerVariants.ExecStartUpgraded, of: "ExecTeleport" } } as never;
    expect(() => checkTable(specOps, dockerTable, stray)).toThrow(/reads ExecTeleport, which the spec lacks/);
    const twice = { ExecStartUpgraded: { ...dockerVariants.ExecStartUpgraded, name: "start" } } as never;
    expect(() => checkTable(specOps, dockerTable, twice)).toThrow(/are both exec.start/);
  });
});

describe("docker generated files", () => {
  it("match a fresh in-memory generation byte for byte", () => {
    expect([...files.keys()].sort()).toEqual(["index.ts", "models.ts", "operations.ts"]);
    for (const [name, text] of files) {
      const onDisk = readFileSync(join(dockerOutDir, name), "utf8");
      expect(onDisk, `${name} is stale: run npm run generate`).toBe(text.endsWith("\n") ? text : `${text}\n`);
    }
  });

  it("is deterministic", () => {
    expect(buildDockerFiles()).toEqual(files);
  });

  it("declares one model per definition", () => {
    const models = files.get("models.ts") ?? "";
    for (const name of Object.keys(spec.definitions)) {
      expect(models, name).toMatch(new RegExp(`^export (interface|type) ${name}\\b`, "m"));
    }
  });
});
