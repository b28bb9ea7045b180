// What containerd answers is checked where it is read: a container record's spec that is not a JSON
// object, an event whose payload does not decode. Each is a ProtocolError, never a raw SyntaxError,
// RangeError or TypeError. A stand-in client replays the bad answers.
import { ProtocolError } from "@berth/runtime-core";
import { describe, expect, it } from "vitest";
import { type ContainerdClient, parseSpec, SPEC_TYPE_URL, subscribeEvents } from "../src/index.js";

const any = (text: string) => ({ typeUrl: SPEC_TYPE_URL, value: Buffer.from(text) });

describe("daemon answers of the wrong shape", () => {
  it("a container spec that is not a JSON object is a ProtocolError", () => {
    for (const text of ["not json", "null", "5", "[]", '{"process":7}', '{"process":{"args":"sh"}}']) {
      expect(() => parseSpec(any(text)), text).toThrow(ProtocolError);
    }
    expect(parseSpec(undefined)).toEqual({});
    expect(parseSpec(any('{"process":{"terminal":true}}')).process?.terminal).toBe(true);
  });

  it("an event whose payload does not decode is a ProtocolError", async () => {
    const client = {
      events: {
        async *subscribe() {
          yield {
            timestamp: new Date(),
            namespace: "n",
            topic: "/tasks/exit",
            event: {
              typeUrl: "containerd.events.TaskExit",
              value: Uint8Array.of(0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f),
            },
          };
        },
      },
    } as unknown as ContainerdClient;
    const read = async () => {
      for await (const _ of subscribeEvents(client));
    };
    await expect(read()).rejects.toBeInstanceOf(ProtocolError);
  });
});
