import type { Cluster } from './cluster.js';

export interface RegionView {
  region: string;
  mode: string;
  rows: Record<string, number>;
  lagSeconds: number;
  appliedPerSecond: number;
  conflicts: number;
}

/** Sum of every sample of a metric in Prometheus text format (all label sets). */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const v = Number(line.split(' ').at(-1));
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}

export function metricMax(text: string, name: string): number {
  let max = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) max = Math.max(max, Number(line.split(' ').at(-1)) || 0);
  return max;
}

export class LiveView {
  private lastApplied = new Map<string, { at: number; total: number }>();
  constructor(private readonly cluster: Cluster, private readonly tables: string[]) {}

  async sample(): Promise<RegionView[]> {
    const out: RegionView[] = [];
    for (const region of this.cluster.regions) {
      const h = this.cluster.agents.get(region);
      const [metrics, health] = await Promise.all([
        h ? fetch(`${h.httpUrl}/metrics`).then((r) => r.text(), () => '') : '',
        h ? fetch(`${h.httpUrl}/healthz`).then((r) => r.json() as Promise<{ mode?: string }>, () => ({ mode: 'down' })) : { mode: 'down' },
      ]);
      const counts = await this.cluster.query<{ t: string; n: number }>(region, this.tables.map((t) => `select '${t}' as t, count(*)::int as n from ${t}`).join(' union all '));
      const total = metricSum(metrics, 'regionsync_transactions_applied_total');
      const prev = this.lastApplied.get(region);
      const now = Date.now();
      this.lastApplied.set(region, { at: now, total });
      out.push({
        region,
        mode: health.mode ?? 'unknown',
        rows: Object.fromEntries(counts.map((c) => [c.t, c.n])),
        lagSeconds: metricMax(metrics, 'regionsync_lag_seconds'),
        appliedPerSecond: prev ? Math.max(0, (total - prev.total) / ((now - prev.at) / 1000)) : 0,
        conflicts: metricSum(metrics, 'regionsync_conflicts_total'),
      });
    }
    return out;
  }

  render(views: RegionView[], header: string): string {
    const short = (t: string) => t.replace(/^public\./, '');
    const lines = [header, '', `${'region'.padEnd(14)}${'mode'.padEnd(12)}${this.tables.map((t) => short(t).padStart(10)).join('')}${'lag s'.padStart(8)}${'applied/s'.padStart(11)}${'conflicts'.padStart(11)}`];
    for (const v of views) {
      lines.push(`${v.region.padEnd(14)}${v.mode.padEnd(12)}${this.tables.map((t) => String(v.rows[t] ?? 0).padStart(10)).join('')}${v.lagSeconds.toFixed(2).padStart(8)}${v.appliedPerSecond.toFixed(1).padStart(11)}${String(v.conflicts).padStart(11)}`);
    }
    return lines.join('\n');
  }
}
