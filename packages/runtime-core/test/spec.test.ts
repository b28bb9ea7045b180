import { describe, expect, it } from "vitest";
import { envList, ValidationError, validateContainerSpec } from "../src/index.js";

describe("validateContainerSpec", () => {
  it("accepts a sound spec", () => {
    const spec = {
      image: "127.0.0.1:5000/busybox:latest",
      command: ["echo", "hi"],
      env: { A: "1" },
      user: "1000:1000",
      memory: 64 * 2 ** 20,
      mounts: [{ type: "tmpfs" as const, target: "/scratch" }],
      ports: [{ containerPort: 80, hostPort: 8080 }],
    };
    // A copy of it: the adapters work from what was checked.
    expect(validateContainerSpec(spec)).toEqual(spec);
  });

  it("refuses bad input with one ValidationError naming every problem", () => {
    let err: unknown;
    try {
      validateContainerSpec({
        image: "Not A Valid:Ref",
        memory: -1,
        user: "no such user!",
        workdir: "relative",
        env: ["NOVALUE"],
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    const message = (err as Error).message;
    expect(message).toContain("spec.memory must be an integer from 1 to 9007199254740991, got -1");
    expect(message).toContain('user "no such user!"');
    expect(message).toContain('workdir "relative"');
    expect(message).toContain('env entry "NOVALUE"');
    expect(message).toContain("Not A Valid:Ref");
  });

  it("turns env maps into KEY=VALUE lists", () => {
    expect(envList({ A: "1", B: "x=y" })).toEqual(["A=1", "B=x=y"]);
    expect(envList(["C=3"])).toEqual(["C=3"]);
    expect(envList(undefined)).toEqual([]);
  });
});
