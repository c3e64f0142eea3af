// The sandbox Cluster derives its agents' HTTP ports from the database name
// (47000 + |hash(name)| % 200 * 10 + n). Other people's clusters on this machine may hold
// the same range, so pick a database name whose ports are free right now.
import { createServer } from 'node:net';

function clusterHash(s: string): number {
  let h = 0;
  for (const ch of s) h = (h * 31 + ch.charCodeAt(0)) | 0;
  return h;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export async function databaseWithFreePorts(base: string, agents: number): Promise<string> {
  for (let i = 0; i < 50; i++) {
    const name = i === 0 ? base : `${base}_${i}`;
    const first = 47000 + (Math.abs(clusterHash(name)) % 200) * 10;
    let ok = true;
    for (let p = first; p < first + agents && ok; p++) ok = await portFree(p);
    if (ok) return name;
  }
  throw new Error(`no free agent port range found for database ${base}`);
}
