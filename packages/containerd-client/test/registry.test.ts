import { describe, expect, it } from "vitest";
import {
  chainIds,
  isLoopbackHost,
  parsePlatform,
  parseWwwAuthenticate,
  selectManifest,
  sha256,
} from "../src/index.js";

describe("parseWwwAuthenticate", () => {
  it("reads a Bearer challenge with quoted params", () => {
    const [c] = parseWwwAuthenticate(
      'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"',
    );
    expect(c).toEqual({
      scheme: "bearer",
      params: {
        realm: "https://auth.example/token",
        service: "registry.example",
        scope: "repository:a/b:pull",
      },
    });
  });
  it("reads several challenges, tokens and escapes", () => {
    const cs = parseWwwAuthenticate('Basic realm="a \\"b\\"", Bearer realm=x,error=invalid_token');
    expect(cs.map((c) => c.scheme)).toEqual(["basic", "bearer"]);
    expect(cs[0]?.params.realm).toBe('a "b"');
    expect(cs[1]?.params).toEqual({ realm: "x", error: "invalid_token" });
  });
});

describe("platform selection", () => {
  const entries = [
    {
      mediaType: "m",
      size: 1,
      digest: "arm7",
      platform: { os: "linux", architecture: "arm", variant: "v7" },
    },
    {
      mediaType: "m",
      size: 1,
      digest: "arm6",
      platform: { os: "linux", architecture: "arm", variant: "v6" },
    },
    { mediaType: "m", size: 1, digest: "arm64", platform: { os: "linux", architecture: "arm64" } },
    { mediaType: "m", size: 1, digest: "amd64", platform: { os: "linux", architecture: "amd64" } },
    { mediaType: "m", size: 1, digest: "win", platform: { os: "windows", architecture: "amd64" } },
  ];
  it("picks the exact platform", () => {
    expect(selectManifest(entries, parsePlatform("linux/amd64"))?.digest).toBe("amd64");
    expect(selectManifest(entries, parsePlatform("linux/arm64/v8"))?.digest).toBe("arm64");
    expect(selectManifest(entries, parsePlatform("linux/arm/v7"))?.digest).toBe("arm7");
  });
  it("falls back to a compatible older arm variant only", () => {
    expect(selectManifest(entries.slice(1), parsePlatform("linux/arm/v7"))?.digest).toBe("arm6");
    expect(selectManifest(entries.slice(0, 1), parsePlatform("linux/arm/v6"))).toBeUndefined();
    expect(selectManifest(entries, parsePlatform("linux/s390x"))).toBeUndefined();
  });
});

describe("digests", () => {
  it("computes chain IDs as containerd does", () => {
    const a = sha256("a");
    const b = sha256("b");
    expect(chainIds([a])).toEqual([a]);
    expect(chainIds([a, b])).toEqual([a, sha256(`${a} ${b}`)]);
  });
  it("treats only loopback hosts as plain-HTTP hosts", () => {
    expect(isLoopbackHost("127.0.0.1:5000")).toBe(true);
    expect(isLoopbackHost("[::1]:5000")).toBe(true);
    expect(isLoopbackHost("localhost")).toBe(true);
    expect(isLoopbackHost("127.example.com")).toBe(false);
    expect(isLoopbackHost("10.0.0.1:5000")).toBe(false);
  });
});
