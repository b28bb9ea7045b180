// Task metrics: Tasks.Metrics answers with an Any holding the cgroup statistics of containerd's cgroups
// library, io.containerd.cgroups.v1.Metrics or io.containerd.cgroups.v2.Metrics. Those protos are not
// part of containerd's API (so not generated here); this reads just the few fields berth reports, by
// field number, and skips everything else:
//
//   v1 Metrics { PidsStat pids = 2; CPUStat cpu = 3; MemoryStat memory = 4; }
//      PidsStat { uint64 current = 1; uint64 limit = 2; }
//      CPUStat { CPUUsage usage = 1; }   CPUUsage { uint64 total = 1; (nanoseconds) }
//      MemoryStat { MemoryEntry usage = 33; }   MemoryEntry { uint64 limit = 1; uint64 usage = 2; }
//   v2 Metrics { PidsStat pids = 1; CPUStat cpu = 2; MemoryStat memory = 4; }
//      PidsStat { uint64 current = 1; uint64 limit = 2; }
//      CPUStat { uint64 usage_usec = 1; }
//      MemoryStat { uint64 usage = 32; uint64 usage_limit = 33; }
import { ProtocolError } from "@berth/runtime-core";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/** The type name of a task's metrics on a cgroup v1 host. */
export const CGROUPS_V1_METRICS = "io.containerd.cgroups.v1.Metrics";
/** The type name of a task's metrics on a cgroup v2 host. */
export const CGROUPS_V2_METRICS = "io.containerd.cgroups.v2.Metrics";

/** The figures berth reads from a task's cgroup metrics; each is absent when the metrics lack it. */
export interface CgroupMetrics {
  /** CPU time used, in nanoseconds. */
  cpuNanos?: number;
  /** Memory in use, in bytes. */
  memoryBytes?: number;
  /** Absent when the cgroup has no memory limit. */
  memoryLimitBytes?: number;
  /** Number of processes and threads. */
  pids?: number;
  /** The pids limit, when one is set. */
  pidsLimit?: number;
}

/** cgroup v1 reports "no limit" as the largest page-aligned int64, v2 as the largest uint64. */
const UNLIMITED = 2n ** 62n;

type Fields = Map<number, bigint | Uint8Array>;

/** The varint and length-delimited fields of one message, by number (the last one wins, as in proto3). */
function fields(bytes: Uint8Array): Fields {
  const out: Fields = new Map();
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [no, type] = reader.tag();
    if (type === WireType.Varint) out.set(no, BigInt(reader.uint64()));
    else if (type === WireType.LengthDelimited) out.set(no, reader.bytes());
    else reader.skip(type, no);
  }
  return out;
}

const sub = (f: Fields, no: number): Fields => {
  const v = f.get(no);
  return v instanceof Uint8Array ? fields(v) : new Map();
};
const num = (f: Fields, no: number): number | undefined => {
  const v = f.get(no);
  return typeof v === "bigint" ? Number(v) : undefined;
};
const limit = (f: Fields, no: number): number | undefined => {
  const v = f.get(no);
  return typeof v === "bigint" && v > 0n && v < UNLIMITED ? Number(v) : undefined;
};

function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Decode the metrics Any of Tasks.Metrics (type URL with or without a "types.containerd.io/" prefix). */
export function decodeCgroupMetrics(typeUrl: string, value: Uint8Array): CgroupMetrics {
  const type = typeUrl.replace(/^.*\//, "");
  try {
    if (type === CGROUPS_V1_METRICS) {
      const m = fields(value);
      const pids = sub(m, 2);
      const memUsage = sub(sub(m, 4), 33);
      return defined({
        cpuNanos: num(sub(sub(m, 3), 1), 1),
        memoryBytes: num(memUsage, 2),
        memoryLimitBytes: limit(memUsage, 1),
        pids: num(pids, 1),
        pidsLimit: limit(pids, 2),
      });
    }
    if (type === CGROUPS_V2_METRICS) {
      const m = fields(value);
      const pids = sub(m, 1);
      const usec = num(sub(m, 2), 1);
      const mem = sub(m, 4);
      return defined({
        cpuNanos: usec === undefined ? undefined : usec * 1000,
        memoryBytes: num(mem, 32),
        memoryLimitBytes: limit(mem, 33),
        pids: num(pids, 1),
        pidsLimit: limit(pids, 2),
      });
    }
  } catch (err) {
    throw new ProtocolError(`malformed ${type}: ${(err as Error).message}`, {
      operation: "Tasks.Metrics",
      backend: "containerd",
      cause: err,
    });
  }
  throw new ProtocolError(`unknown metrics type ${JSON.stringify(typeUrl)}`, {
    operation: "Tasks.Metrics",
    backend: "containerd",
  });
}
