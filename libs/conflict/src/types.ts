// Local copies of the wire types this lib needs; they match libs/protocol's schemas
// field for field, so values decoded by the protocol codec can be passed in directly.

/** HLC string `WWWWWWWWWWWWWWW.LLLLLL`; string order is time order. */
export type HlcString = string;

/** When (HLC) and where (origin region) a row or column was written. */
export interface Version {
  hlc: HlcString;
  region: string;
}

/** Highest HLC seen from each region. */
export type VectorClock = Record<string, HlcString>;

/** A row in PostgreSQL text format; null is SQL NULL. */
export type RowValues = Record<string, string | null>;

export type TableStrategy = ({ kind: 'row-lww' } | { kind: 'column-lww' }) & { counterColumns?: string[] };

/** One region's cumulative contribution to a counter column. */
export interface CounterContribution {
  /** Decimal bigint. */
  total: string;
  version: Version;
}

export interface RowState {
  /** null = tombstone. Counter columns hold the visible sum as a decimal string. */
  values: RowValues | null;
  /** Newest event (write or delete) merged into this row. */
  version: Version;
  /** Version of each non-counter column whose version differs from `version`; absent means "written at `version`". */
  columnVersions?: Record<string, Version>;
  /** column -> region -> that region's newest cumulative contribution. */
  counters?: Record<string, Record<string, CounterContribution>>;
  /** Newest delete merged into this row; kept on a live row so older writes stay dead. */
  deletedAt?: Version;
}

export interface RowChange {
  op: 'insert' | 'update' | 'delete';
  values?: RowValues;
  /** Columns pgoutput left out because their TOASTed value did not change. */
  unchangedToast?: string[];
  /**
   * column -> the writing region's cumulative contribution (not a delta), and the base it
   * counted from when the column held a value before any contribution (BASE_CONTRIBUTION).
   */
  counters?: Record<string, { region: string; total: string; base?: string }>;
  version: Version;
}

export type MergeOutcome = 'applied' | 'merged' | 'skipped';

export interface MergeResult {
  state: RowState;
  outcome: MergeOutcome;
  changed: boolean;
  /**
   * Columns the change marked unchanged-TOAST but whose value this region does not
   * hold (e.g. an update reviving a tombstone). They are absent from `state.values`;
   * the apply layer must not write them as NULL.
   */
  unresolvedToast?: string[];
}
