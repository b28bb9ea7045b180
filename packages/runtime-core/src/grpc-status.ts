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

type ErrorClass = new (message: string, details: BerthErrorDetails) => BerthError;

/** The error class of each gRPC status code berth tells apart; any other code is a DaemonError. */
const ERROR_CLASSES: ReadonlyMap<number, ErrorClass> = new Map<number, ErrorClass>([
  [1, AbortedError], // CANCELLED
  [3, ValidationError], // INVALID_ARGUMENT
  [4, TimeoutError], // DEADLINE_EXCEEDED
  [5, NotFoundError], // NOT_FOUND
  [6, ConflictError], // ALREADY_EXISTS
  [7, UnauthorizedError], // PERMISSION_DENIED
  [9, ConflictError], // FAILED_PRECONDITION
  [10, ConflictError], // ABORTED
  [12, UnsupportedError], // UNIMPLEMENTED
  [14, UnavailableError], // UNAVAILABLE
  [16, UnauthorizedError], // UNAUTHENTICATED
]);

/** Build the typed error for a failed gRPC call. */
export function errorFromGrpcStatus(
  code: number,
  daemonMessage: string,
  details: Omit<BerthErrorDetails, "status" | "daemonMessage"> = {},
): BerthError {
  const status = grpcStatusNames[code] ?? `CODE_${code}`;
  const where = details.operation ? `${details.operation}: ` : "";
  const message = `${where}${daemonMessage || status}`;
  const ErrorClass = ERROR_CLASSES.get(code) ?? DaemonError;
  return new ErrorClass(message, { ...details, status, daemonMessage });
}
