// Issue 5 point 5, on NATS and on Kafka (3 regions, the real stack):
//  - a value over 1 MB (incompressible, so PostgreSQL stores it out of line in TOAST)
//    reaches every region intact;
//  - an update of another column of that row leaves the TOASTed value out of the WAL stream
//    (pgoutput's "unchanged TOAST"): every region must still hold the value intact, never
//    null and never an older one — also when the large value was itself just replaced, and
//    when the update comes from another region than the one that wrote the value;
//  - one transaction of E2E_BIG_TX_ROWS (default 100,000) rows, streamed by the agent in
//    chunks (replication.chunkRows, default 500), reaches every region;
//  - every agent's RSS (from /proc) stays under E2E_RSS_BOUND_MB (default 300) throughout.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, checksumSql, waitUntil, type Broker } from '@regionsync/sandbox';
import type { AgentEndpoint } from './checkers.js';
import { convergeAndCheck, describeViolations, endpoints, envNumber, RssSampler, freshPrefix } from './scenario-support.js';

const BIG_TX_ROWS = envNumber('E2E_BIG_TX_ROWS', 100_000);
const RSS_BOUND_MB = envNumber('E2E_RSS_BOUND_MB', 300);
const CONVERGE_TIMEOUT_MS = envNumber('E2E_CONVERGE_TIMEOUT_S', 300) * 1000;

/** ~bytes of random base64: incompressible enough to be TOASTed out of line. */
const bigValue = (bytes: number) => randomBytes(Math.ceil((bytes * 3) / 4)).toString('base64').slice(0, bytes);

describe.each(['nats', 'kafka'] as Broker[])('large values and transactions on %s (3 regions)', (broker) => {
  let cluster: Cluster;
  let agents: AgentEndpoint[] = [];
  let rss: RssSampler;
  const tag = `large ${broker}`;

  beforeAll(async () => {
    cluster = await Cluster.create({ database: `e2e_large_${broker}`, broker, prefix: freshPrefix(`large${broker}`) });
    await cluster.startAll();
    agents = endpoints(cluster);
    rss = new RssSampler(cluster).start();
  }, 900_000);

  afterAll(async () => {
    rss?.stop();
    if (rss) console.log(`[${tag}] agent RSS over the whole file: ${JSON.stringify(rss.summary())}`);
    await cluster?.stop();
  }, 300_000);

  /** (md5, length, cid) of documents.title for one row in every region. */
  async function titleEverywhere(id: string): Promise<Record<string, { md5: string | null; len: number | null; cid: string | null } | undefined>> {
    const out: Record<string, { md5: string | null; len: number | null; cid: string | null } | undefined> = {};
    for (const r of cluster.regions) out[r] = (await cluster.query<{ md5: string | null; len: number | null; cid: string | null }>(r, 'select md5(title) as md5, length(title) as len, cid from public.documents where id = $1', [id]))[0];
    return out;
  }

  async function waitForTitle(id: string, want: { md5: string; len: number; cid: string }, what: string): Promise<void> {
    let last: unknown;
    await waitUntil(what, async () => {
      const got = await titleEverywhere(id);
      last = got;
      return Object.values(got).every((g) => g?.md5 === want.md5 && g.len === want.len && g.cid === want.cid);
    }, 120_000, 250).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; wanted ${JSON.stringify(want)}, regions hold ${JSON.stringify(last)}`, { cause: err });
    });
  }

  it('a value over 1 MB arrives intact; updates of other columns keep the unchanged TOASTed value everywhere', async () => {
    const [a, b, c] = cluster.regions as [string, string, string];
    const id = '00000000-0000-4000-8000-00000000b16a';
    const v1 = bigValue(1_500_000);
    const md5 = (await cluster.query<{ m: string }>(a, 'select md5($1::text) as m', [v1]))[0]!.m;
    await cluster.query(a, `insert into public.documents (id, user_id, home_region, title, cid, s3_key, updated_at) values ($1, gen_random_uuid(), $2, $3, 'cid-1', 'docs/big', now())`, [id, a, v1]);
    // Out of line: the stored row is far smaller than the value (TOAST pointer).
    const stored = (await cluster.query<{ raw: number; toast: number }>(a, `select pg_column_size(title) as raw, (select pg_relation_size(reltoastrelid) from pg_class where oid = 'public.documents'::regclass)::int as toast from public.documents where id = $1`, [id]))[0]!;
    expect(stored.toast, 'the value lives in the TOAST table').toBeGreaterThan(1_000_000);
    await waitForTitle(id, { md5, len: v1.length, cid: 'cid-1' }, `the 1.5 MB value in every region`);

    // Another column only, in the region that wrote the value: title is "unchanged TOAST".
    await cluster.query(a, `update public.documents set cid = 'cid-2', updated_at = now() where id = $1`, [id]);
    await waitForTitle(id, { md5, len: v1.length, cid: 'cid-2' }, 'cid-2 with the value intact in every region');

    // From another region: it has the value locally, its WAL does not carry it either.
    await cluster.query(b, `update public.documents set cid = 'cid-3', updated_at = now() where id = $1`, [id]);
    await waitForTitle(id, { md5, len: v1.length, cid: 'cid-3' }, 'cid-3 (from another region) with the value intact');

    // Replace the value, then at once update another column: the new value, never the old one.
    const v2 = bigValue(1_200_000);
    const md5v2 = (await cluster.query<{ m: string }>(c, 'select md5($1::text) as m', [v2]))[0]!.m;
    await cluster.query(c, `update public.documents set title = $2, updated_at = now() where id = $1`, [id, v2]);
    await cluster.query(c, `update public.documents set cid = 'cid-4', updated_at = now() where id = $1`, [id]);
    await waitForTitle(id, { md5: md5v2, len: v2.length, cid: 'cid-4' }, 'the replaced value and cid-4 in every region');

    // Both in one transaction, with the value replaced by another region's write first.
    const v3 = bigValue(2_000_000);
    const md5v3 = (await cluster.query<{ m: string }>(b, 'select md5($1::text) as m', [v3]))[0]!.m;
    await cluster.query(b, `update public.documents set title = $2, updated_at = now() where id = $1`, [id, v3]);
    await waitForTitle(id, { md5: md5v3, len: v3.length, cid: 'cid-4' }, 'the 2 MB value in every region');
    await cluster.query(a, `begin; update public.documents set cid = 'cid-5' where id = '${id}'; update public.documents set updated_at = now() where id = '${id}'; commit`);
    await waitForTitle(id, { md5: md5v3, len: v3.length, cid: 'cid-5' }, 'cid-5 with the 2 MB value intact');

    const run = await convergeAndCheck(agents, { writes: [], deltas: [], initial: new Map(), timeoutMs: CONVERGE_TIMEOUT_MS, tag });
    expect(run.convergence.why).toBe('');
    expect(describeViolations(run.violations)).toEqual([]);
    for (const r of cluster.regions) expect(rss.peakBytes(r) / 1048576, `${r} agent RSS (MB)`).toBeLessThan(RSS_BOUND_MB);
  });

  it(`a ${BIG_TX_ROWS}-row transaction arrives everywhere, streamed in chunks, with bounded agent memory`, async () => {
    const src = cluster.regions[0]!;
    const before = rss.summary();
    const t0 = Date.now();
    await cluster.query(src, `insert into public.orders (id, user_id, home_region, amount_cents, status, updated_at)
      select gen_random_uuid(), gen_random_uuid(), $1, i, 'bulk', now() from generate_series(1, $2::int) i`, [src, BIG_TX_ROWS]);
    const committedMs = Date.now() - t0;
    const want = (await cluster.query<{ n: number; sum: string }>(src, `select count(*)::int as n, sum(amount_cents)::text as sum from public.orders where status = 'bulk'`))[0]!;
    expect(want.n).toBe(BIG_TX_ROWS);
    const progress: Record<string, number> = {};
    await waitUntil(`${BIG_TX_ROWS} rows in every region`, async () => {
      let all = true;
      for (const r of cluster.regions) {
        const got = (await cluster.query<{ n: number; sum: string | null }>(r, `select count(*)::int as n, sum(amount_cents)::text as sum from public.orders where status = 'bulk'`))[0]!;
        progress[r] = got.n;
        if (got.n !== want.n || got.sum !== want.sum) all = false;
      }
      return all;
    }, CONVERGE_TIMEOUT_MS, 1000).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; rows per region ${JSON.stringify(progress)}`, { cause: err });
    });
    const arrivedMs = Date.now() - t0;
    // Identical rows everywhere, not just counts.
    const sums = new Set<string>();
    for (const r of cluster.regions) sums.add((await cluster.query<{ sum: string }>(r, checksumSql('public.orders')))[0]!.sum);
    expect(sums.size, 'orders identical in every region').toBe(1);
    const chunks = await cluster.query<{ n: number }>(cluster.regions[1]!, `select count(distinct chunk)::int as n from regionsync.applied_messages where commit_lsn = (select commit_lsn from regionsync.applied_messages where source = $1 group by commit_lsn order by count(*) desc limit 1)`, [src]);
    const peaks = Object.fromEntries(cluster.regions.map((r) => [r, Math.round(rss.peakBytes(r) / 1048576)]));
    console.log(`[${tag}] figures ${JSON.stringify({ broker, rows: BIG_TX_ROWS, committedMs, arrivedEverywhereMs: arrivedMs, chunksApplied: chunks[0]?.n, rssBeforeMb: before, peakRssMb: peaks, curvePer10s: Object.fromEntries(cluster.regions.map((r) => [r, rss.curve(r)])) })}`);
    expect(chunks[0]?.n ?? 0, 'the transaction travelled in chunks').toBeGreaterThanOrEqual(Math.floor(BIG_TX_ROWS / 500));
    for (const r of cluster.regions) expect(peaks[r], `${r} agent RSS (MB), bound ${RSS_BOUND_MB}`).toBeLessThan(RSS_BOUND_MB);
  }, 900_000);
});
