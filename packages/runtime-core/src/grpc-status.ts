// gRPC status codes mapped to berth's error classes. Pure data: runtime-core moves no bytes, the gRPC
// clients call this with what @grpc/grpc-js reported.
import {
  AbortedError,
  type BerthError,
  type BerthErrorDetails,
  ConflictError,
  DaemonError,
  NotFoundError,
  TimeoutError,
  UnauthorizedError,
  UnavailableError,
  UnsupportedError,
  ValidationError,
} from "./errors.js";

/** The canonical gRPC status code names, indexed by number. */
export const grpcStatusNames = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
] as const;

/** Build the typed error for a failed gRPC call. */
export function errorFromGrpcStatus(
  code: number,
  daemonMessage: string,
  details: Omit<BerthErrorDetails, "status" | "daemonMessage"> = {},
): BerthError {
  const status = grpcStatusNames[code] ?? `CODE_${code}`;
  const where = details.operation ? `${details.operation}: ` : "";
  const message = `${where}${daemonMessage || status}`;
  const d: BerthErrorDetails = { ...details, status, daemonMessage };
  switch (code) {
    case 1:
      return new AbortedError(message, d);
    case 3:
      return new ValidationError(message, d);
    case 4:
      return new TimeoutError(message, d);
    case 5:
      return new NotFoundError(message, d);
    case 6:
    case 9:
    case 10:
      return new ConflictError(message, d);
    case 7:
    case 16:
      return new UnauthorizedError(message, d);
    case 12:
      return new UnsupportedError(message, d);
    case 14:
      return new UnavailableError(message, d);
    default:
      return new DaemonError(message, d);
  }
}
