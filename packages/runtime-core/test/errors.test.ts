import { describe, expect, it } from "vitest";
import {
  AbortedError,
  BerthError,
  ConflictError,
  DaemonError,
  NotFoundError,
  TimeoutError,
  UnavailableError,
  UnsupportedError,
} from "../src/index.js";
import {
  classifyDaemonMessage,
  digestMismatchIn,
  errorFromGrpcStatus,
  parseEnvFile,
} from "../src/internal.js";

describe("errorFromGrpcStatus", () => {
  it("maps status codes to typed errors carrying the detail", () => {
    const err = errorFromGrpcStatus(5, 'image "x" not found', {
      operation: "Images.Get",
      backend: "containerd",
    });
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toBeInstanceOf(BerthError);
    expect(err).toMatchObject({
      code: "NotFound",
      status: "NOT_FOUND",
      operation: "Images.Get",
      daemonMessage: 'image "x" not found',
    });
    expect(err.message).toBe('Images.Get: image "x" not found');
    expect(errorFromGrpcStatus(14, "connection refused")).toBeInstanceOf(UnavailableError);
    expect(errorFromGrpcStatus(4, "deadline")).toBeInstanceOf(TimeoutError);
    expect(errorFromGrpcStatus(6, "exists")).toBeInstanceOf(ConflictError);
    expect(errorFromGrpcStatus(12, "unknown service")).toBeInstanceOf(UnsupportedError);
    expect(errorFromGrpcStatus(1, "cancelled")).toBeInstanceOf(AbortedError);
    expect(errorFromGrpcStatus(13, "boom")).toBeInstanceOf(DaemonError);
    expect(errorFromGrpcStatus(99, "")).toMatchObject({ status: "CODE_99" });
  });

  it("maps every code to its class, codes it does not tell apart to DaemonError", () => {
    const codes: Record<string, number[]> = {
      Aborted: [1],
      Validation: [3],
      Timeout: [4],
      NotFound: [5],
      Conflict: [6, 9, 10],
      Unauthorized: [7, 16],
      Unsupported: [12],
      Unavailable: [14],
      Daemon: [0, 2, 8, 11, 13, 15, 17, -1, 1.5, Number.NaN],
    };
    for (const [code, list] of Object.entries(codes)) {
      for (const n of list) expect(errorFromGrpcStatus(n, "m").code, String(n)).toBe(code);
    }
  });

  it("gives each error its class name", () => {
    expect(new NotFoundError("x").name).toBe("NotFoundError");
  });
});

describe("parseEnvFile", () => {
  it("reads KEY=VALUE lines, skipping comments and stripping quotes", () => {
    expect(parseEnvFile("# c\nA=1\nexport B=\"two words\"\n\nC='x=y'\nnot a line\n")).toEqual({
      A: "1",
      B: "two words",
      C: "x=y",
    });
  });
});

describe("classifyDaemonMessage", () => {
  it("reads the reason out of a generic daemon error", () => {
    expect(classifyDaemonMessage('Head "http://r/v2/x/manifests/1": no basic auth credentials')).toBe(
      "Unauthorized",
    );
    expect(classifyDaemonMessage("failed to pull: 401 Unauthorized")).toBe("Unauthorized");
    expect(classifyDaemonMessage("command timeout 1s exceeded")).toBe("Timeout");
    expect(classifyDaemonMessage("manifest unknown")).toBe("NotFound");
    expect(classifyDaemonMessage('container "x" not found')).toBe("NotFound");
    expect(classifyDaemonMessage("disk full")).toBeUndefined();
  });
});

describe("digestMismatchIn", () => {
  const a = `sha256:${"a".repeat(64)}`;
  const b = `sha256:${"b".repeat(64)}`;
  it("reads each daemon's words for a tampered blob (the strings the harness's daemons print)", () => {
    // Docker Engine 20.10, in the pull's NDJSON stream
    expect(digestMismatchIn(`filesystem layer verification failed for digest ${a}`)).toEqual({
      expected: a,
      actual: "unknown",
    });
    expect(digestMismatchIn(`image config verification failed for digest ${a}`)?.expected).toBe(a);
    // Podman 4.3 (containers/image)
    expect(
      digestMismatchIn(
        `writing blob: storing blob to file "/x/1": happened during read: Digest did not match, expected ${a}, got ${b}`,
      ),
    ).toEqual({ expected: a, actual: b });
    // containerd 1.6's content store, through the CRI
    expect(
      digestMismatchIn(
        `failed to pull and unpack image "r/x:1": failed commit on ref "layer-${a}": unexpected commit digest ${b}, expected ${a}: failed precondition`,
      ),
    ).toEqual({ expected: a, actual: b });
    expect(digestMismatchIn("unexpected commit size 5, expected 6: failed precondition")).toEqual({
      expected: "6 bytes",
      actual: "5 bytes",
    });
  });
  it("leaves other failures alone", () => {
    expect(digestMismatchIn("gzip: invalid header")).toBeUndefined();
    expect(digestMismatchIn(`manifest for r/x@${a} not found`)).toBeUndefined();
    expect(digestMismatchIn("")).toBeUndefined();
  });
});
