// The transfer pull's pure translation: the request's Anys, containerd's progress as PullEvents, and the
// credential answer (only for the image's registry).
import { describe, expect, it } from "vitest";
import { ImageStore } from "../src/generated/github.com/containerd/containerd/api/types/transfer/imagestore.js";
import type { Progress } from "../src/generated/github.com/containerd/containerd/api/types/transfer/progress.js";
import {
  AuthType,
  OCIRegistry,
} from "../src/generated/github.com/containerd/containerd/api/types/transfer/registry.js";
import {
  authResponse,
  TransferProgress,
  TransferType,
  transferPullRequest,
} from "../src/pull-transfer-map.js";
import { unpackAny } from "../src/streaming.js";

const d = (c: string) => `sha256:${c.repeat(64)}`;
const progress = (event: string, mediaType?: string, digest?: string, size = 10, at = 0): Progress => ({
  event,
  name: "",
  parents: [],
  progress: BigInt(at),
  total: BigInt(size),
  desc: mediaType && digest ? { mediaType, digest, size: BigInt(size), annotations: {} } : undefined,
});
const INDEX = "application/vnd.oci.image.index.v1+json";
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const CONFIG = "application/vnd.oci.image.config.v1+json";
const LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";

describe("transferPullRequest", () => {
  it("names the reference, the resolver settings, the image, its platform and the unpack", () => {
    const r = transferPullRequest({
      reference: "127.0.0.1:5000/busybox:latest",
      name: "127.0.0.1:5000/busybox:latest",
      platform: { os: "linux", architecture: "arm64", variant: "v8" },
      unpackInto: "overlayfs",
      hostsDir: "/etc/containerd/certs.d",
      defaultScheme: "http",
      authStream: "creds-1",
      progressStream: "progress-1",
    });
    expect(r.options).toEqual({ progressStream: "progress-1" });
    const source = unpackAny(r.source as never, TransferType.ociRegistry, OCIRegistry, "test");
    expect(source.reference).toBe("127.0.0.1:5000/busybox:latest");
    expect(source.resolver).toMatchObject({
      authStream: "creds-1",
      hostDir: "/etc/containerd/certs.d",
      defaultScheme: "http",
    });
    const store = unpackAny(r.destination as never, TransferType.imageStore, ImageStore, "test");
    const platform = { os: "linux", architecture: "arm64", variant: "v8", osVersion: "" };
    expect(store).toMatchObject({
      name: "127.0.0.1:5000/busybox:latest",
      manifestLimit: 1,
      allMetadata: false,
    });
    expect(store.platforms).toEqual([platform]);
    expect(store.unpacks).toEqual([{ platform, snapshotter: "overlayfs" }]);
  });

  it("asks for no unpack when none is wanted", () => {
    const r = transferPullRequest({
      reference: "docker.io/library/busybox:latest",
      name: "x",
      platform: { os: "linux", architecture: "amd64" },
      unpackInto: undefined,
      progressStream: "p",
    });
    const store = unpackAny(r.destination as never, TransferType.imageStore, ImageStore, "test");
    expect(store.unpacks).toEqual([]);
  });
});

describe("TransferProgress", () => {
  it("reads containerd's progress of an index pull as the client-side pull's events", () => {
    const t = new TransferProgress("reg/app:1");
    const events = [
      progress("Resolving from OCI Registry (reg/app:1)"),
      progress("waiting", INDEX, d("a"), 300),
      progress("waiting", MANIFEST, d("b"), 200),
      progress("waiting", CONFIG, d("c"), 100),
      progress("waiting", LAYER, d("e"), 1000),
      progress("already exists", CONFIG, d("c"), 100, 100),
      progress("downloading", LAYER, d("e"), 1000, 512),
      progress("complete", LAYER, d("e"), 1000, 1000),
      progress("complete", LAYER, d("e"), 1000, 1000),
      progress("downloading", LAYER, d("e"), 1000, 1000),
      progress("complete", MANIFEST, d("b"), 200, 200),
      progress("saved"),
    ].flatMap((p) => t.read(p));
    expect(events).toEqual([
      { type: "resolved", name: "reg/app:1", digest: d("a"), mediaType: INDEX, manifestDigest: d("b") },
      { type: "blob-exists", kind: "config", digest: d("c"), size: 100 },
      { type: "blob-progress", kind: "layer", digest: d("e"), offset: 512, size: 1000 },
      { type: "blob-done", kind: "layer", digest: d("e"), size: 1000, downloaded: 1000 },
      { type: "blob-done", kind: "manifest", digest: d("b"), size: 200, downloaded: 200 },
    ]);
    expect([...t.existed]).toEqual([d("c")]);
  });

  it("ignores messages without a well-formed descriptor", () => {
    const t = new TransferProgress("x");
    expect(t.read(progress("complete", LAYER, "sha256:nothex"))).toEqual([]);
    expect(t.read({ ...progress("complete", LAYER, d("e")), desc: undefined })).toEqual([]);
    expect(t.read(progress("downloading", MANIFEST, d("b"), 5, 1))).toEqual([
      { type: "resolved", name: "x", digest: d("b"), mediaType: MANIFEST, manifestDigest: d("b") },
      { type: "blob-progress", kind: "manifest", digest: d("b"), offset: 1, size: 5 },
    ]);
  });
});

describe("authResponse", () => {
  const creds = { serverAddress: "reg.example:5000", username: "u", password: "p" };

  it("answers with the credentials for the image's registry only", () => {
    expect(authResponse("reg.example:5000", "reg.example:5000", creds)).toEqual({
      authType: AuthType.CREDENTIALS,
      username: "u",
      secret: "p",
    });
    expect(authResponse("mirror.example", "reg.example:5000", creds)).toEqual({ authType: AuthType.NONE });
    expect(authResponse("reg.example:5000", "reg.example:5000", undefined)).toEqual({
      authType: AuthType.NONE,
    });
  });

  it("never answers with credentials that name another registry", () => {
    const other = { ...creds, serverAddress: "elsewhere.example" };
    expect(authResponse("reg.example:5000", "reg.example:5000", other)).toEqual({ authType: AuthType.NONE });
  });

  it("Docker Hub's names are one registry; an identity token is a refresh token; a bare registry token is not sent", () => {
    const hub = { serverAddress: "https://index.docker.io/v1/", identityToken: "tok" };
    expect(authResponse("registry-1.docker.io", "docker.io", hub)).toEqual({
      authType: AuthType.REFRESH,
      secret: "tok",
    });
    const bearer = { serverAddress: "docker.io", registryToken: "t" };
    expect(authResponse("registry-1.docker.io", "docker.io", bearer)).toEqual({ authType: AuthType.NONE });
  });
});
