// The CRI log format lives in runtime-core (the containerd adapter writes and reads it too); crio-client
// re-exports it so `import { readCriLogs } from "@berth/crio-client"` keeps working.
export {
  CriLogDecoder,
  type CriLogDecoderOptions,
  type CriLogEntry,
  type CriLogRecord,
  formatCriLogRecords,
  type LogStream,
  parseCriLogRecord,
  type ReadCriLogsOptions,
  readCriLogs,
} from "@berth/runtime-core/internal";
