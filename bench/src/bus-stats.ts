/** Percentile (nearest rank) of unsorted samples; 0 for none. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return 0;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Wall clock in ms with sub-ms precision, comparable across the producer and consumer. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A 1 KiB (or `size`) payload whose first 8 bytes carry the send time. */
export function stampedPayload(size: number): Uint8Array {
  const buf = new Uint8Array(size);
  new DataView(buf.buffer).setFloat64(0, nowMs());
  return buf;
}

export function sentAt(data: Uint8Array): number {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getFloat64(0);
}
