// A stand-in CRI runtime for the client-bound comparison: it answers ContainerStatus and ExecSync with the
// bytes the real runtime sent for the same requests, so the runtime's own time drops out and what is left
// is the clients' cost. Run by index.ts as a child process (its own CPU, like a daemon):
// `replay-server.ts <dir>` serves <dir>/cri.sock from <dir>/status.bin and <dir>/exec.bin, prints "ready".
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";

const dir = process.argv[2];
if (!dir) throw new Error("usage: replay-server.ts <dir>");
const answers: Record<string, Buffer> = {
  ContainerStatus: readFileSync(join(dir, "status.bin")),
  ExecSync: readFileSync(join(dir, "exec.bin")),
};
const bytes = (b: Buffer) => b;
const server = new grpc.Server();
const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
const handlers: grpc.UntypedServiceImplementation = {};
for (const [name, answer] of Object.entries(answers)) {
  definition[name] = {
    path: `/runtime.v1.RuntimeService/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  };
  handlers[name] = (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => callback(null, answer);
}
server.addService(definition, handlers);
server.bindAsync(`unix://${join(dir, "cri.sock")}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
  console.log("ready");
});
process.on("SIGTERM", () => server.forceShutdown());
