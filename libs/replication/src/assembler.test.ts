import { describe, expect, it } from 'vitest';
import { oldValuesOf, parsePgTextArray, TransactionAssembler, unixMicrosToIso, type PgMessage, type PgRelation } from './assembler.js';
import { TextPgoutputPlugin } from './text-pgoutput.js';

const users: PgRelation = { schema: 'public', name: 'users', columns: [{ name: 'id' }, { name: 'email' }, { name: 'bio' }], keyColumns: ['id'] };
const versions: PgRelation = { schema: 'regionsync', name: 'row_versions', columns: [], keyColumns: ['table_name', 'pk'] };
const begin = (lsn = '0/100'): PgMessage => ({ tag: 'begin', commitLsn: lsn, commitTime: 0n, xid: 7 });
const commit = (lsn = '0/100'): PgMessage => ({ tag: 'commit', commitLsn: lsn, commitEndLsn: '0/110', commitTime: 0n });
const stamp = (pk: string, hlc: string, extra: Record<string, string | null> = {}): PgMessage => ({
  tag: 'insert', relation: versions, new: { table_name: 'public.users', pk, hlc, region: 'us-east-1', deleted: 'f', counters: null, seen: null, redacted: null, ...extra },
});
// The per-row stamp trigger's message, just before its row.
const version = (pk: string, hlc: string, extra: Record<string, unknown> = {}): PgMessage => ({
  tag: 'message', prefix: 'regionsync-version', transactional: true,
  content: Buffer.from(JSON.stringify({ table: 'public.users', pk, hlc, region: 'us-east-1', deleted: false, counters: null, seen: null, redacted: null, ...extra })),
});
const ins = (id: string, email: string | undefined, bio: string | null = 'b'): PgMessage => ({ tag: 'insert', relation: users, new: { id, email, bio } });
// An INSERT statement's stamp, and the version of a key it wrote over a tombstone, sent after the rows.
const stmt = (table: string, hlc: string, counterColumns: string[] = []): PgMessage => ({
  tag: 'message', prefix: 'regionsync-stamp', transactional: true,
  content: Buffer.from(JSON.stringify({ table, hlc, region: 'us-east-1', seen: null, counterColumns })),
});
const late = (table: string, pk: string, hlc: string, extra: Record<string, unknown>): PgMessage => ({
  tag: 'message', prefix: 'regionsync-late-version', transactional: true,
  content: Buffer.from(JSON.stringify({ table, pk, hlc, region: 'us-east-1', deleted: false, counters: null, seen: null, redacted: null, ...extra })),
});

function run(msgs: PgMessage[], chunkRows = 1000) {
  const chunks: number[] = [];
  const a = new TransactionAssembler('us-east-1', new Set(['public.users']), chunkRows, (rows) => chunks.push(rows.length));
  let tx;
  for (const m of msgs) tx = a.push(m) ?? tx;
  return { tx: tx!, chunks };
}

describe('TransactionAssembler', () => {
  it('attaches the stamped version to its row and keeps text values as they are', () => {
    const { tx } = run([begin(), stamp('1', '000000000000100.000001'), ins('1', 'a@x'), commit()]);
    expect(tx.rows).toEqual([{ table: 'public.users', op: 'insert', key: { id: '1' }, values: { id: '1', email: 'a@x', bio: 'b' }, version: { hlc: '000000000000100.000001', region: 'us-east-1' } }]);
    expect(tx.commitLsn).toBe('0/100');
    expect(tx.commitEndLsn).toBe('0/110');
    expect(tx.fromRegionsync).toBe(false);
    expect(tx.vclock).toEqual({ 'us-east-1': '000000000000100.000001' });
  });

  it('drops everything in a transaction applied by a regionsync origin (no echo)', () => {
    const { tx } = run([begin(), { tag: 'origin', originName: 'regionsync_db_eu_west_1' }, stamp('1', '000000000000100.000001'), ins('1', 'a@x'), commit()]);
    expect(tx.fromRegionsync).toBe(true);
    expect(tx.rows).toEqual([]);
  });

  it('sends a row touched twice once, in its final state and version', () => {
    const { tx } = run([begin(), stamp('1', '000000000000100.000001'), ins('1', 'a@x'), stamp('1', '000000000000100.000002'), { tag: 'update', relation: users, key: null, old: null, new: { id: '1', email: 'b@x', bio: 'b' } }, commit()]);
    expect(tx.rows).toHaveLength(1);
    expect(tx.rows[0]).toMatchObject({ op: 'update', values: { email: 'b@x' }, version: { hlc: '000000000000100.000002' } });
  });

  it('marks unchanged TOAST values and columns held only redacted, so the receiver keeps its own', () => {
    const { tx } = run([begin(), stamp('1', '000000000000100.000001', { redacted: '{email}' }), { tag: 'insert', relation: users, new: { id: '1', email: 'null-here', bio: undefined } }, commit()]);
    expect(tx.rows[0]!.values).toEqual({ id: '1' });
    expect(tx.rows[0]!.unchangedToast?.sort()).toEqual(['bio', 'email']);
  });

  it('streams a large transaction in chunks and keeps the remainder for the commit', () => {
    const msgs: PgMessage[] = [begin()];
    for (let i = 0; i < 25; i++) msgs.push(stamp(String(i), '000000000000100.000001'), ins(String(i), `${i}@x`));
    msgs.push(commit());
    const { tx, chunks } = run(msgs, 10);
    expect(chunks).toEqual([10, 10]);
    expect(tx.rows).toHaveLength(5);
    expect(tx.finalChunkIndex).toBe(2);
  });

  it('under REPLICA IDENTITY FULL keys come from the catalogue, the old tuple stays local', () => {
    // pgoutput flags every column as key under FULL: the email must not become part of the key.
    const full: PgRelation = { ...users, keyColumns: ['id', 'email', 'bio'] };
    const a = new TransactionAssembler('us-east-1', new Set(['public.users']), 1000, undefined, (t) => (t === 'public.users' ? ['id'] : undefined));
    const msgs: PgMessage[] = [
      begin(),
      stamp('1', '000000000000100.000001'),
      { tag: 'update', relation: full, key: null, old: { id: '1', email: 'old@x', bio: 'b' }, new: { id: '1', email: 'new@x', bio: 'b' } },
      stamp('2', '000000000000100.000002'),
      { tag: 'delete', relation: full, key: null, old: { id: '2', email: 'gone@x', bio: 'c' } },
      commit(),
    ];
    let tx;
    for (const m of msgs) tx = a.push(m) ?? tx;
    expect(tx!.rows.map((r) => r.key)).toEqual([{ id: '1' }, { id: '2' }]);
    expect(tx!.rows[1]!.values).toBeUndefined();
    expect(oldValuesOf(tx!.rows[0]!)).toEqual({ id: '1', email: 'old@x', bio: 'b' });
    expect(oldValuesOf(tx!.rows[1]!)).toEqual({ id: '2', email: 'gone@x', bio: 'c' });
    expect(JSON.stringify(tx!.rows)).not.toContain('old@x');
    expect(JSON.stringify(tx!.rows)).not.toContain('gone@x');
  });

  it('takes a row\'s version from the stamp trigger\'s message before it (redacted columns, counters, seen)', () => {
    const { tx } = run([
      begin(),
      version('1', '000000000000100.000003', { redacted: ['email'], seen: { 'eu-west-1': '000000000000099.000000' } }),
      { tag: 'update', relation: users, key: null, old: null, new: { id: '1', email: 'blank', bio: 'b' } },
      version('2', '000000000000100.000004', { deleted: true }),
      { tag: 'delete', relation: users, key: { id: '2' }, old: null },
      commit(),
    ]);
    expect(tx.rows.map((r) => [r.op, r.version.hlc])).toEqual([['update', '000000000000100.000003'], ['delete', '000000000000100.000004']]);
    expect(tx.rows[0]!.values).toEqual({ id: '1', bio: 'b' });
    expect(tx.rows[0]!.unchangedToast).toEqual(['email']);
    expect(tx.vclock).toEqual({ 'eu-west-1': '000000000000099.000000', 'us-east-1': '000000000000100.000004' });
  });

  it('versions the new keys of an INSERT statement with its stamp and skips the versions recorded after it', () => {
    const products: PgRelation = { schema: 'public', name: 'products', columns: [{ name: 'id' }, { name: 'stock' }], keyColumns: ['id'] };
    const a = new TransactionAssembler('us-east-1', new Set(['public.users', 'public.products']), 1000);
    const st = (table: string, hlc: string, counterColumns: string[] = []): PgMessage => ({
      tag: 'message', prefix: 'regionsync-stamp', transactional: true,
      content: Buffer.from(JSON.stringify({ table, hlc, region: 'us-east-1', seen: { 'eu-west-1': '000000000000090.000000' }, counterColumns })),
    });
    const S = '000000000000100.000000';
    const msgs: PgMessage[] = [
      begin(),
      st('public.users', S),
      ins('1', 'a@x'),
      // A re-inserted key (tombstone): stamped per row, before its row, above the statement.
      version('2', '000000000000100.000001'),
      ins('2', 'b@x'),
      st('public.products', S, ['stock']),
      { tag: 'insert', relation: products, new: { id: '7', stock: '5' } },
      { tag: 'insert', relation: products, new: { id: '8', stock: null } },
      commit(),
    ];
    let tx;
    for (const m of msgs) tx = a.push(m) ?? tx;
    expect(tx!.rows.map((r) => [r.key, r.version.hlc])).toEqual([[{ id: '1' }, S], [{ id: '2' }, '000000000000100.000001'], [{ id: '7' }, S], [{ id: '8' }, S]]);
    expect(tx!.rows[2]!.counters).toEqual({ stock: { region: 'us-east-1', total: '5' } });
    expect(tx!.rows[3]!.counters).toEqual({ stock: { region: 'us-east-1', total: '0' } });
    expect(tx!.rows[0]!.counters).toBeUndefined();
    expect(tx!.vclock).toEqual({ 'eu-west-1': '000000000000090.000000', 'us-east-1': '000000000000100.000001' });
  });

  it('a late version re-versions a re-inserted key still in the chunk, keeping its WAL values', () => {
    const products: PgRelation = { schema: 'public', name: 'products', columns: [{ name: 'id' }, { name: 'stock' }], keyColumns: ['id'] };
    const a = new TransactionAssembler('us-east-1', new Set(['public.products']), 1000);
    const S = '000000000000100.000000';
    const V = '000000000000100.000002';
    let tx;
    for (const m of [
      begin(),
      stmt('public.products', S, ['stock']),
      { tag: 'insert', relation: products, new: { id: '7', stock: '5' } },
      { tag: 'insert', relation: products, new: { id: '8', stock: '3' } },
      // 8 had a tombstone with eu-west-1's contribution 4: ours becomes 3 - 4.
      late('public.products', '8', V, { key: { id: '8' }, values: { id: '8', stock: 'ignored: the WAL row is here' }, counters: { stock: { 'us-east-1': { total: '-1' }, 'eu-west-1': { total: '4' } } }, seen: { 'eu-west-1': '000000000000099.000000' } }),
      commit(),
    ] as PgMessage[]) tx = a.push(m) ?? tx;
    expect(tx!.rows.map((r) => [r.key, r.op, r.version.hlc, r.values, r.counters])).toEqual([
      [{ id: '7' }, 'insert', S, { id: '7', stock: '5' }, { stock: { region: 'us-east-1', total: '5' } }],
      [{ id: '8' }, 'insert', V, { id: '8', stock: '3' }, { stock: { region: 'us-east-1', total: '-1' } }],
    ]);
    expect(tx!.maxHlc).toBe(V);
    expect(tx!.vclock).toEqual({ 'us-east-1': V, 'eu-west-1': '000000000000099.000000' });
  });

  it('a late version for a row an earlier chunk already carried sends the row again with the message values', () => {
    const chunks: { id: string | null; hlc: string }[][] = [];
    const a = new TransactionAssembler('us-east-1', new Set(['public.users']), 3, (rows) => chunks.push(rows.map((r) => ({ id: r.key.id ?? null, hlc: r.version.hlc }))));
    const S = '000000000000100.000000';
    const V = '000000000000100.000005';
    let tx;
    for (const m of [
      begin(),
      stmt('public.users', S),
      ins('1', 'a@x'),
      ins('2', 'b@x'),
      ins('3', 'c@x'),
      late('public.users', '1', V, { key: { id: '1' }, values: { id: '1', email: 'a@x', bio: null }, redacted: ['bio'] }),
      commit(),
    ] as PgMessage[]) tx = a.push(m) ?? tx;
    expect(chunks).toEqual([[{ id: '1', hlc: S }, { id: '2', hlc: S }, { id: '3', hlc: S }]]);
    expect(tx!.rows).toEqual([
      { table: 'public.users', op: 'insert', key: { id: '1' }, values: { id: '1', email: 'a@x' }, unchangedToast: ['bio'], version: { hlc: V, region: 'us-east-1' } },
    ]);
  });

  it('an UPDATE of the primary key travels as the old key\'s delete, then the new key\'s row', () => {
    const { tx } = run([
      begin(),
      version('1', '000000000000100.000002', { deleted: true }),
      // bio is TOASTed and unchanged: the new key's version message carries it.
      version('9', '000000000000100.000003', { values: { id: '9', email: 'a@x', bio: 'long' } }),
      { tag: 'update', relation: users, key: { id: '1', email: null, bio: null }, old: null, new: { id: '9', email: 'a@x', bio: undefined } },
      // A plain update (no old key: the key did not change) stays one change.
      version('9', '000000000000100.000004'),
      { tag: 'update', relation: users, key: null, old: null, new: { id: '9', email: 'b@x', bio: 'b' } },
      commit(),
    ]);
    expect(tx.rows.map((r) => [r.op, r.key, r.version.hlc, r.values ?? null])).toEqual([
      ['delete', { id: '1' }, '000000000000100.000002', null],
      ['update', { id: '9' }, '000000000000100.000004', { id: '9', email: 'b@x', bio: 'b' }],
    ]);
    const moved = run([
      begin(),
      version('9', '000000000000100.000003', { values: { id: '9', email: 'a@x', bio: 'long' } }),
      { tag: 'update', relation: users, key: { id: '1', email: null, bio: null }, old: null, new: { id: '9', email: 'a@x', bio: undefined } },
      commit(),
    ]).tx;
    expect(moved.rows[1]).toMatchObject({ op: 'update', key: { id: '9' }, values: { id: '9', email: 'a@x', bio: 'long' } });
    expect(moved.rows[1]!.unchangedToast).toBeUndefined();
  });

  it('ignores a malformed late version, and one of a table that is not replicated', () => {
    const bad: PgMessage = { tag: 'message', prefix: 'regionsync-late-version', content: Buffer.from('{"table":"public.users"}') };
    const { tx } = run([begin(), stmt('public.users', '000000000000100.000000'), ins('1', 'a@x'), bad, late('public.other', '1', '000000000000200.000000', { key: { id: '1' }, values: { id: '1' } }), late('public.users', '1', '000000000000200.000000', { key: { id: 1 }, values: {} }), commit()]);
    expect(tx.rows.map((r) => r.version.hlc)).toEqual(['000000000000100.000000']);
  });

  it('ignores statement stamps of transactions applied by a regionsync origin and malformed ones', () => {
    const bad: PgMessage = { tag: 'message', prefix: 'regionsync-stamp', content: Buffer.from('not json') };
    const { tx } = run([begin(), bad, ins('1', 'a@x'), commit()]);
    // No stamp at all: versioned by the commit, so nothing is dropped.
    expect(tx.rows[0]!.version).toEqual({ hlc: '000000000000000.000000', region: 'us-east-1' });
  });

  it('parses text[] literals', () => {
    expect(parsePgTextArray('{}')).toEqual([]);
    expect(parsePgTextArray('{email,full_name}')).toEqual(['email', 'full_name']);
    expect(parsePgTextArray('{"a b",c}')).toEqual(['a b', 'c']);
  });
});

describe('commit time', () => {
  // pgoutput sends microseconds since 2000-01-01; the parser hands them on since 1970-01-01.
  const PG_EPOCH_OFFSET_US = 946_684_800_000_000n;
  const when = '2026-11-24T00:10:52.418323Z';
  const pgMicros = BigInt(Date.parse(when)) * 1000n + 323n - PG_EPOCH_OFFSET_US;
  function beginBuf(): Buffer {
    const b = Buffer.alloc(21);
    b.write('B', 0);
    b.writeBigUInt64BE(0x100n, 1);
    b.writeBigInt64BE(pgMicros, 9);
    b.writeUInt32BE(7, 17);
    return b;
  }
  function commitBuf(): Buffer {
    const b = Buffer.alloc(26);
    b.write('C', 0);
    b.writeUInt8(0, 1);
    b.writeBigUInt64BE(0x100n, 2);
    b.writeBigUInt64BE(0x110n, 10);
    b.writeBigInt64BE(pgMicros, 18);
    return b;
  }

  it('is the source commit time to the microsecond, as pgoutput sent it through the parser', () => {
    const plugin = new TextPgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
    const { tx } = run([plugin.parse(beginBuf()) as PgMessage, stamp('1', '000000000000100.000001'), ins('1', 'a@x'), plugin.parse(commitBuf()) as PgMessage]);
    expect(tx.commitTime).toBe(when);
  });

  it('converts Unix microseconds without rounding', () => {
    expect(unixMicrosToIso(0n)).toBe('1970-01-01T00:00:00.000000Z');
    expect(unixMicrosToIso(1_795_479_052_418_323n)).toBe('2026-11-24T00:10:52.418323Z');
    expect(unixMicrosToIso(1_795_479_052_000_999n)).toBe('2026-11-24T00:10:52.000999Z');
  });
});
