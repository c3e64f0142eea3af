// Local stand-in for the protocol error catalogue so this lib does not block on
// libs/protocol; the codes are catalogue codes, so swapping is a one-line change.
export type ConflictErrorCode = 'RS_REPLICATION_CLOCK_SKEW' | 'RS_CONFLICT_INVALID_VERSION' | 'RS_CONFLICT_STRATEGY';

export class ConflictError extends Error {
  readonly code: ConflictErrorCode;
  // Every one of these is a data or configuration problem: retrying the same input fails the same way.
  readonly retryable = false;

  constructor(code: ConflictErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'ConflictError';
    this.code = code;
  }
}
