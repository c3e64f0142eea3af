// Linux /proc readers: resident memory and CPU time of processes on this machine.
import { readFileSync, readdirSync } from 'node:fs';

const CLK_TCK = 100;

export function rssMb(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** User + system CPU seconds of one process (all its threads). */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 and 15 (utime, stime)
  } catch {
    return undefined;
  }
}

/** System-mode CPU seconds of one process: on this VM a syscall is where much of it goes. */
export function systemSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[12]) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Read and write syscalls of one process so far (/proc/<pid>/io: syscr + syscw). */
export function ioSyscalls(pid: number): number | undefined {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    const r = /syscr:\s+(\d+)/.exec(io);
    const w = /syscw:\s+(\d+)/.exec(io);
    return r && w ? Number(r[1]) + Number(w[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Busy and total CPU seconds of the whole machine (every core), from /proc/stat. */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0) / CLK_TCK;
  const idle = ((v[3] ?? 0) + (v[4] ?? 0)) / CLK_TCK;
  return { busy: total - idle, total };
}

/** Pids whose command line contains `needle` (e.g. the broker's process). */
export function pidsMatching(needle: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ').includes(needle)) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

/** Max RSS of a set of processes, sampled on an interval until stopped. */
export class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  readonly maxMb = new Map<string, number>();
  /** First sample per process (idle, before any load). */
  readonly idleMb = new Map<string, number>();

  constructor(private readonly pids: () => Record<string, number | undefined>, private readonly everyMs = 100) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    return this;
  }

  sample(): void {
    for (const [name, pid] of Object.entries(this.pids())) {
      if (pid === undefined) continue;
      const mb = rssMb(pid);
      if (mb !== undefined && !this.idleMb.has(name)) this.idleMb.set(name, mb);
      if (mb !== undefined && mb > (this.maxMb.get(name) ?? 0)) this.maxMb.set(name, mb);
    }
  }

  stop(): number {
    if (this.timer) clearInterval(this.timer);
    this.sample();
    return Math.max(0, ...this.maxMb.values());
  }
}

/** CPU seconds and syscalls of named process groups between start() and stop(). */
export class CpuMeter {
  private before = new Map<string, Map<number, number>>();
  private sysBefore = new Map<string, Map<number, number>>();
  private callsBefore = new Map<string, Map<number, number>>();
  private machineBefore = machineCpu();
  private wallBefore = performance.now();
  private selfBefore = process.cpuUsage();

  constructor(private readonly groups: () => Record<string, number[]>) {}

  private read(probe: (pid: number) => number | undefined = cpuSeconds): Map<string, Map<number, number>> {
    const out = new Map<string, Map<number, number>>();
    for (const [name, pids] of Object.entries(this.groups())) {
      const m = new Map<number, number>();
      for (const p of pids) {
        const v = probe(p);
        if (v !== undefined) m.set(p, v);
      }
      out.set(name, m);
    }
    return out;
  }

  private static sum(before: Map<string, Map<number, number>>, after: Map<string, Map<number, number>>, digits: number): Record<string, number> {
    const out: Record<string, number> = {};
    // Per pid, over processes alive at both ends (a process that came or went is left out).
    for (const [k, m] of after) {
      let sum = 0;
      for (const [pid, v] of m) sum += v - (before.get(k)?.get(pid) ?? v);
      out[k] = round(sum, digits);
    }
    return out;
  }

  start(): this {
    this.before = this.read();
    this.sysBefore = this.read(systemSeconds);
    this.callsBefore = this.read(ioSyscalls);
    this.machineBefore = machineCpu();
    this.wallBefore = performance.now();
    this.selfBefore = process.cpuUsage();
    return this;
  }

  /** Per group: CPU seconds and share of one core over the interval; plus bench itself and the whole machine. */
  /**
   * Per group: CPU seconds, of which in the kernel (sysS), and read/write syscalls; plus
   * bench itself and the whole machine.
   */
  stop(): { wallS: number; groups: Record<string, number>; sysS: Record<string, number>; syscalls: Record<string, number>; benchS: number; machineBusyS: number; machineTotalS: number; restarted?: string[] } {
    const after = this.read();
    // A group whose processes changed (e.g. someone restarted the broker) contaminates the phase: say so.
    const restarted = [...after].filter(([k, m]) => [...(this.before.get(k)?.keys() ?? [])].some((pid) => !m.has(pid))).map(([k]) => k);
    const m = machineCpu();
    const self = process.cpuUsage(this.selfBefore);
    return {
      wallS: round((performance.now() - this.wallBefore) / 1000, 2),
      groups: CpuMeter.sum(this.before, after, 2),
      sysS: CpuMeter.sum(this.sysBefore, this.read(systemSeconds), 2),
      syscalls: CpuMeter.sum(this.callsBefore, this.read(ioSyscalls), 0),
      benchS: round((self.user + self.system) / 1e6, 2),
      machineBusyS: round(m.busy - this.machineBefore.busy, 2),
      machineTotalS: round(m.total - this.machineBefore.total, 2),
      ...(restarted.length > 0 ? { restarted } : {}),
    };
  }
}

export function round(v: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
