// Shared by the grpc tests: a "message" type whose wire format is its bytes, and a rejection catcher.
export const Bytes = {
  encode: (m: unknown) => {
    const b = Buffer.from((m as Uint8Array | undefined) ?? []);
    return { finish: () => b };
  },
  decode: (b: Uint8Array) => Buffer.from(b),
  fromPartial: (o: never) => o,
};

/** The error a promise rejects with; throws if it resolves. */
export async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected a failure");
}
