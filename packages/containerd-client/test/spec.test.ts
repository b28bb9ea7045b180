import { ValidationError } from "@berth/runtime-core";
import { describe, expect, it } from "vitest";
import {
  buildSpec,
  currentCapabilities,
  defaultSpec,
  hostDevices,
  resolveUser,
  withCpuLimit,
  withEnv,
  withHostDevices,
  withHostNetwork,
  withHostname,
  withImageConfig,
  withMemoryLimit,
  withMounts,
  withPrivileged,
  withProcessArgs,
  withReadonlyRootfs,
  withTty,
  withUser,
} from "../src/index.js";
import { parseGroup, parsePasswd } from "../src/oci/user.js";

const passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n";
const group = "root:x:0:\napp:x:1001:\nstaff:x:50:app,other\n";
const ctx = { id: "c1", namespace: "ns", passwd, group };

describe("default spec", () => {
  it("matches containerd's Linux defaults", () => {
    const s = defaultSpec(ctx);
    expect(s.linux?.namespaces?.map((n) => n.type)).toEqual(["pid", "ipc", "uts", "mount", "network"]);
    expect(s.mounts?.map((m) => m.destination)).toEqual(
      expect.arrayContaining([
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
      ]),
    );
    expect(s.mounts?.find((m) => m.destination === "/sys/fs/cgroup")?.options).toContain("ro");
    expect(s.process?.rlimits).toEqual([{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }]);
    expect(s.process?.capabilities?.bounding).toContain("CAP_NET_BIND_SERVICE");
    expect(s.process?.capabilities?.bounding).not.toContain("CAP_SYS_ADMIN");
    expect(s.linux?.maskedPaths).toContain("/proc/kcore");
    expect(s.linux?.readonlyPaths).toContain("/proc/sys");
    expect(s.linux?.cgroupsPath).toBe("/ns/c1");
  });
});

describe("options", () => {
  it("applies the image config and lets later options win", () => {
    const s = buildSpec(
      ctx,
      withImageConfig({
        architecture: "amd64",
        os: "linux",
        rootfs: { type: "layers", diff_ids: [] },
        config: {
          Env: ["PATH=/bin", "A=1"],
          Entrypoint: ["/init"],
          Cmd: ["x"],
          WorkingDir: "/w",
          User: "app",
        },
      }),
      withEnv({ A: "2", B: "3" }),
    );
    expect(s.process?.env).toEqual(["PATH=/bin", "A=2", "B=3"]);
    expect(s.process?.args).toEqual(["/init", "x"]);
    expect(s.process?.cwd).toBe("/w");
    expect(s.process?.user).toEqual({ uid: 1000, gid: 1001, additionalGids: [50] });
    expect(buildSpec(ctx, withProcessArgs("sh", "-c", "true")).process?.args).toEqual(["sh", "-c", "true"]);
  });

  it("resolves users and groups by name or number", () => {
    expect(resolveUser("", passwd, group)).toEqual({ uid: 0, gid: 0, additionalGids: [] });
    expect(resolveUser("1000", passwd, group).gid).toBe(1001);
    expect(resolveUser("1234:5", passwd, group)).toEqual({ uid: 1234, gid: 5, additionalGids: [] });
    expect(resolveUser("app:staff", passwd, group).gid).toBe(50);
    expect(() => resolveUser("nobody", passwd, group)).toThrow(ValidationError);
    expect(() => buildSpec(ctx, withUser("app:nogroup"))).toThrow(/nogroup/);
  });

  it("reads /etc/passwd and /etc/group lines, skipping comments, short and malformed ones", () => {
    const pw =
      "root:x:0:0:root:/root:/bin/sh\n# app:x:1:1\nshort:x:5\nbad:x:a:1\n  app:x:1000:1001::/:/bin/sh  \n";
    expect(parsePasswd(pw)).toEqual([
      { name: "root", uid: 0, gid: 0 },
      { name: "app", uid: 1000, gid: 1001 },
    ]);
    const gr = "root:x:0:\n#staff:x:50:app\nshort:x\nbad:x:g:app\nstaff:x:50:app,,bob\nnone:x:60\n";
    expect(parseGroup(gr)).toEqual([
      { name: "root", gid: 0, members: [] },
      { name: "staff", gid: 50, members: ["app", "bob"] },
      { name: "none", gid: 60, members: [] },
    ]);
  });

  it("sets hostname, tty, mounts, limits, readonly rootfs", () => {
    const s = buildSpec(
      ctx,
      withHostname("h"),
      withTty(),
      withMounts([{ destination: "/data", type: "bind", source: "/tmp", options: ["rbind"] }]),
      withMounts([{ destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["size=1m"] }]),
      withMemoryLimit(64 * 1024 * 1024),
      withCpuLimit(1.5),
      withReadonlyRootfs(),
    );
    expect(s.hostname).toBe("h");
    expect(s.process?.terminal).toBe(true);
    expect(s.mounts?.filter((m) => m.destination === "/dev/shm")).toEqual([
      { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["size=1m"] },
    ]);
    expect(s.mounts?.some((m) => m.destination === "/data")).toBe(true);
    expect(s.linux?.resources?.memory?.limit).toBe(64 * 1024 * 1024);
    expect(s.linux?.resources?.cpu).toEqual({ period: 100_000, quota: 150_000 });
    expect(s.root).toEqual({ path: "rootfs", readonly: true });
    expect(() => withMemoryLimit(-1)).toThrow(ValidationError);
  });

  it("privileged and host network relax the defaults", () => {
    const s = buildSpec(ctx, withPrivileged(), withHostNetwork());
    expect(s.process?.capabilities?.bounding).toContain("CAP_SYS_ADMIN");
    expect(s.linux?.maskedPaths).toEqual([]);
    expect(s.mounts?.find((m) => m.destination === "/sys")?.options).not.toContain("ro");
    expect(s.linux?.namespaces?.map((n) => n.type)).not.toContain("network");
    expect(s.mounts?.some((m) => m.destination === "/etc/resolv.conf")).toBe(true);
  });

  it("host devices: each char and block device of /dev with its numbers, no links, no pts", () => {
    const devices = hostDevices();
    const nullDev = devices.find((d) => d.path === "/dev/null");
    expect(nullDev).toMatchObject({ type: "c", major: 1, minor: 3, fileMode: 0o666 });
    expect(devices.some((d) => d.path === "/dev/stdin" || d.path.startsWith("/dev/pts/"))).toBe(false);
    expect(devices.some((d) => d.path === "/dev/console")).toBe(false);
    const s = buildSpec(ctx, withHostDevices(), withHostDevices());
    expect(s.linux?.devices?.length).toBe(devices.length);
  });

  it("privileged grants the capabilities this process holds, no more", () => {
    const caps = currentCapabilities("Name:\tx\nCapEff:\t000001fffeffffff\n");
    expect(caps).toContain("CAP_SYS_ADMIN");
    expect(caps).not.toContain("CAP_SYS_RESOURCE"); // bit 24, clear
    expect(currentCapabilities("CapEff:\t0000000000000001\n")).toEqual(["CAP_CHOWN"]);
  });
});
