// Summarises V8 .cpuprofile files (agents run with BENCH_CPU_PROF=<dir>): self time by
// area (module or package) and the hottest functions, so "where the time goes" is measured.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

function area(url: string): string {
  if (!url) return '(native/gc/idle)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const ws = /\/(libs|apps|tools)\/([^/]+)\/src\/(.+)$/.exec(url);
  if (ws) return `${ws[1]}/${ws[2]}/${ws[3]}`;
  if (url.startsWith('node:')) return url;
  return url.replace(/^file:\/\//, '');
}

export function summariseProfile(path: string, top = 12): { totalMs: number; areas: [string, number][]; functions: [string, number][] } {
  const p = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000));
  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  let total = 0;
  for (const [id, ms] of self) {
    const n = byId.get(id)!;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)' || name === '(program)') continue;
    total += ms;
    const a = name === '(garbage collector)' ? '(gc)' : area(n.callFrame.url);
    areas.set(a, (areas.get(a) ?? 0) + ms);
    const f = `${name} ${area(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
    fns.set(f, (fns.get(f) ?? 0) + ms);
  }
  const sort = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => [k, Math.round(v)] as [string, number]);
  return { totalMs: Math.round(total), areas: sort(areas), functions: sort(fns) };
}

/** One summary per agent profile under dir/<broker>-<region>/. */
export function summariseProfiles(dir: string): string {
  const lines: string[] = [];
  const files = existsSync(dir) ? readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((x) => x.endsWith('.cpuprofile')) : [];
  for (const f of files) {
    const s = summariseProfile(join(dir, f));
    lines.push(`${f}: ${s.totalMs} ms on CPU (excluding idle)`);
    lines.push(`  by area: ${s.areas.map(([k, v]) => `${k} ${v}`).join(' | ')}`);
    lines.push(`  hottest: ${s.functions.map(([k, v]) => `${k} ${v}`).join(' | ')}`);
  }
  return lines.join('\n');
}
