// The single error catalogue for every regionsync package. Codes are stable API:
// operators grep logs and alert on them, so never rename one; add a new code instead.
// ERRORS.md documents each code and errors.test.ts keeps the two in step.

export type ErrorArea = 'protocol' | 'config' | 'bus' | 'replication' | 'gdpr' | 'cache' | 'content' | 'conflict';

interface CatalogueEntry {
  readonly area: ErrorArea;
  readonly retryable: boolean;
  readonly description: string;
}

export const ERROR_CATALOGUE = {
  // protocol
  RS_PROTOCOL_DECODE: {
    area: 'protocol',
    retryable: false,
    description: 'Message bytes are not valid UTF-8 JSON; the message is poison and goes to the dead-letter subject, check the producer.',
  },
  RS_PROTOCOL_SCHEMA: {
    area: 'protocol',
    retryable: false,
    description: 'Message or value is valid JSON but has the wrong shape (the message names the field path and the expectation); dead-letter it and fix the producer.',
  },
  RS_PROTOCOL_TOO_LARGE: {
    area: 'protocol',
    retryable: false,
    description: 'Encoded message exceeds the configured size limit; lower the chunk size of change messages or raise the limit on bus and codec together.',
  },
  RS_PROTOCOL_VERSION: {
    area: 'protocol',
    retryable: false,
    description: 'Envelope version is not supported by this build; upgrade the older agents so every region speaks the same protocol version.',
  },
  // config
  RS_CONFIG_INVALID: {
    area: 'config',
    retryable: false,
    description: 'Configuration value is missing or malformed (the message names the key); fix the configuration and restart.',
  },
  RS_CONFIG_FILE: {
    area: 'config',
    retryable: false,
    description: 'Configuration file cannot be read or parsed; check the path, permissions and syntax.',
  },
  RS_CONFIG_PREREQUISITE: {
    area: 'config',
    retryable: false,
    description: 'An external prerequisite is not met (for example wal_level is not logical); change the server setting named in the message and restart it.',
  },
  // bus
  RS_BUS_CONNECT: {
    area: 'bus',
    retryable: true,
    description: 'Cannot connect to the message bus; the agent retries on its own, check broker address, credentials and network if it persists.',
  },
  RS_BUS_PUBLISH: {
    area: 'bus',
    retryable: true,
    description: 'Broker rejected or failed a publish; it is retried and the slot is not acknowledged past it, check broker health if it persists.',
  },
  RS_BUS_PUBLISH_TIMEOUT: {
    area: 'bus',
    retryable: true,
    description: 'Broker did not confirm a publish in time; it is retried idempotently, check broker load and latency if it persists.',
  },
  RS_BUS_CLOSED: {
    area: 'bus',
    retryable: false,
    description: 'Operation attempted on a bus connection that was already closed; this is a lifecycle bug in the caller, report it.',
  },
  RS_BUS_PROVISION: {
    area: 'bus',
    retryable: false,
    description: 'Creating or checking streams/topics failed; grant the bus user rights to create them or pre-create them as documented.',
  },
  RS_BUS_CONSUMER: {
    area: 'bus',
    retryable: true,
    description: 'Consumer subscription or fetch failed; it is re-created automatically, check broker health and consumer limits if it persists.',
  },
  // replication
  RS_REPLICATION_SLOT: {
    area: 'replication',
    retryable: false,
    description: 'Logical replication slot cannot be created or used (for example it is held by another process); check pg_replication_slots.',
  },
  RS_REPLICATION_SLOT_LOST: {
    area: 'replication',
    retryable: false,
    description: 'Replication slot was invalidated or dropped, so WAL since its last acknowledgement is gone; the agent re-creates it and sends every region a full copy of this region.',
  },
  RS_REPLICATION_STREAM: {
    area: 'replication',
    retryable: true,
    description: 'Logical replication stream broke; capture reconnects from the last confirmed LSN, check database connectivity if it persists.',
  },
  RS_REPLICATION_APPLY: {
    area: 'replication',
    retryable: true,
    description: 'Applying a remote transaction failed transiently; it is retried and nothing is acknowledged, check the local database if it persists.',
  },
  RS_REPLICATION_SCHEMA_MISMATCH: {
    area: 'replication',
    retryable: false,
    description: 'Incoming rows do not match the local table definition (DDL is not replicated); apply the same migration in every region, then resume the table.',
  },
  RS_REPLICATION_CLOCK_SKEW: {
    area: 'replication',
    retryable: false,
    description: 'Clock skew beyond the configured maximum was detected and the agent refuses to stamp or apply changes; fix time sync (NTP) on the host named in the message.',
  },
  RS_REPLICATION_PREREQUISITE: {
    area: 'replication',
    retryable: false,
    description: 'A table or database lacks what replication needs (primary key, replica identity, publication, track_commit_timestamp); fix it as the message says.',
  },
  // conflict
  RS_CONFLICT_INVALID_VERSION: {
    area: 'conflict',
    retryable: false,
    description: 'A row version (HLC or origin region) is missing or malformed so conflicts cannot be resolved; the change is dead-lettered, check the producer.',
  },
  RS_CONFLICT_STRATEGY: {
    area: 'conflict',
    retryable: false,
    description: 'A table names an unknown merge strategy or counter/LWW column configuration that does not fit the table; fix the table configuration.',
  },
  // gdpr
  RS_GDPR_POLICY_INVALID: {
    area: 'gdpr',
    retryable: false,
    description: 'Residency policy is malformed or contradictory (the message names the rule); fix the policy file, nothing is sent until it loads.',
  },
  RS_GDPR_RESIDENCY_VIOLATION: {
    area: 'gdpr',
    retryable: false,
    description: 'Data arrived at or was about to leave for a region its policy forbids; it was refused and audited, investigate the policy hashes of both regions.',
  },
  RS_GDPR_AUDIT_CHAIN_BROKEN: {
    area: 'gdpr',
    retryable: false,
    description: 'Audit ledger hash chain does not verify (gap or tampering); preserve the ledger and investigate before continuing.',
  },
  RS_GDPR_ERASURE: {
    area: 'gdpr',
    retryable: true,
    description: 'An erasure step failed in a region; it is retried until every region acknowledges, check the region named in the message if it persists.',
  },
  // cache
  RS_CACHE_UNAVAILABLE: {
    area: 'cache',
    retryable: true,
    description: 'Redis is unreachable or failed a command; invalidation is retried, check the Redis named in the message if it persists.',
  },
  // content
  RS_CONTENT_PIN: {
    area: 'content',
    retryable: true,
    description: 'Pinning a CID on the local IPFS node failed; it is retried, check the Kubo node and its connectivity to peers.',
  },
  RS_CONTENT_COPY: {
    area: 'content',
    retryable: true,
    description: 'Cross-region S3 object copy failed; it is retried, check bucket permissions and the object store endpoint.',
  },
  RS_CONTENT_WITHHELD: {
    area: 'content',
    retryable: false,
    description: 'Content was not pinned or copied because residency policy forbids it in the target region; this is expected and audited.',
  },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export const ERROR_CODES = Object.keys(ERROR_CATALOGUE) as ErrorCode[];

export interface RegionsyncErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
  retryable?: boolean;
}

// Symbol.for survives duplicate copies of this package (source vs dist resolution),
// where instanceof would not.
const BRAND = Symbol.for('regionsync.error');

export class RegionsyncError extends Error {
  readonly code: ErrorCode;
  readonly area: ErrorArea;
  readonly retryable: boolean;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, opts: RegionsyncErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RegionsyncError';
    this.code = code;
    const entry: CatalogueEntry = ERROR_CATALOGUE[code];
    this.area = entry.area;
    this.retryable = opts.retryable ?? entry.retryable;
    if (opts.details !== undefined) this.details = opts.details;
    Object.defineProperty(this, BRAND, { value: true });
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      area: this.area,
      retryable: this.retryable,
      message: this.message,
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CATALOGUE, value);
}

export function isRegionsyncError(e: unknown): e is RegionsyncError {
  if (e instanceof RegionsyncError) return true;
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as Record<symbol, unknown>)[BRAND] === true &&
    isErrorCode((e as { code?: unknown }).code)
  );
}

export function isRetryable(e: unknown): boolean {
  return isRegionsyncError(e) ? e.retryable : false;
}

export function errorCode(e: unknown): ErrorCode | undefined {
  return isRegionsyncError(e) ? e.code : undefined;
}
