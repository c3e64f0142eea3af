// Preloaded into agent processes (NODE_OPTIONS=--import) when BENCH_CPU_PROF is set:
// `--cpu-prof` is not allowed in NODE_OPTIONS, so profile through the inspector and
// write the .cpuprofile when the process exits (the agent exits after draining on SIGTERM).
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.BENCH_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  process.on('exit', () => {
    // Same-thread inspector sessions dispatch synchronously, so this completes before exit.
    session.post('Profiler.stop', (err, res) => {
      if (err || !res) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `agent-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
