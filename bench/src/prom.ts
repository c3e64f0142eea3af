// Minimal Prometheus text scrape: sums every sample of a metric name (across labels). A
// histogram's buckets are also kept per upper bound, as `<name>_bucket|<le>`, so a phase's
// delay distribution can be read from the difference of two scrapes.
export async function scrape(url: string): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`).catch(() => undefined);
  if (!res?.ok) return new Map();
  return parseMetrics(await res.text());
}

export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const add = (k: string, v: number) => out.set(k, (out.get(k) ?? 0) + v);
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const v = Number(m[3]);
    if (!Number.isFinite(v)) continue;
    add(m[1]!, v);
    const le = m[1]!.endsWith('_bucket') ? /le="([^"]+)"/.exec(m[2] ?? '') : null;
    if (le) add(`${m[1]}|${le[1]}`, v);
  }
  return out;
}

export function delta(after: Map<string, number>, before: Map<string, number>, name: string): number {
  return (after.get(name) ?? 0) - (before.get(name) ?? 0);
}

/**
 * Quantiles of what a histogram observed between two scrapes, interpolated linearly inside
 * a bucket as Prometheus's histogram_quantile does; undefined when nothing was observed.
 */
export function histogramQuantiles(after: Map<string, number>, before: Map<string, number>, name: string, qs: number[]): { count: number; quantiles: (number | undefined)[] } | undefined {
  const prefix = `${name}_bucket|`;
  const buckets: { le: number; n: number }[] = [];
  for (const k of after.keys()) if (k.startsWith(prefix)) buckets.push({ le: Number(k.slice(prefix.length)), n: delta(after, before, k) });
  buckets.sort((a, b) => a.le - b.le);
  const count = buckets.at(-1)?.n ?? 0;
  if (count <= 0) return undefined;
  const quantiles = qs.map((q) => {
    const rank = q * count;
    let lower = 0;
    let below = 0;
    for (const b of buckets) {
      if (b.n >= rank) {
        if (!Number.isFinite(b.le)) return lower; // in the +Inf bucket: its lower bound is all that is known
        return b.n === below ? b.le : lower + ((b.le - lower) * (rank - below)) / (b.n - below);
      }
      lower = b.le;
      below = b.n;
    }
    return undefined;
  });
  return { count, quantiles };
}
