import { describe, expect, it } from 'vitest';
import { errorCode } from '@regionsync/protocol';
import { resolveConfig } from './config.js';

const base = `
region: us-east-1
regions: [us-east-1, eu-west-1]
database: { url: "postgres://u:secret-password@127.0.0.1:5432/db" }
bus: { kind: nats, servers: ["nats://127.0.0.1:4222"] }
tables:
  - name: public.users
  - name: public.products
    counterColumns: [stock]
`;

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

describe('resolveConfig', () => {
  it('fills every default from one place', () => {
    const c = resolveConfig({}, { configYaml: base });
    expect(c.bus.prefix).toBe('regionsync');
    expect(c.tables[0]).toEqual({ name: 'public.users', strategy: 'row-lww', counterColumns: [] });
    expect(c.http).toEqual({ host: '127.0.0.1', port: 9400 });
    expect(c.replication.chunkRows).toBe(500);
    expect(c.replication.maxPendingRows).toBe(20_000);
  });

  it('lets the environment override the file', () => {
    const c = resolveConfig({ REGIONSYNC_BUS_KIND: 'kafka', REGIONSYNC_BUS_SERVERS: 'a:9092, b:9092', REGIONSYNC_HTTP_PORT: '0' }, { configYaml: base });
    expect(c.bus.kind).toBe('kafka');
    expect(c.bus.servers).toEqual(['a:9092', 'b:9092']);
    expect(c.http.port).toBe(0);
  });

  it('rejects unknown keys, naming them', () => {
    const e = errorOf(() => resolveConfig({}, { configYaml: `${base}\nbogus: 1\n`, configPath: 'agent.yaml' }));
    expect(errorCode(e)).toBe('RS_CONFIG_INVALID');
    expect(e.message).toMatch(/agent\.yaml/);
    expect(e.message).toMatch(/bogus/);
  });

  it('names the field and the expectation, never the value', () => {
    const e = errorOf(() => resolveConfig({ REGIONSYNC_BUS_KIND: 'rabbit' }, { configYaml: base }));
    expect(e.message).toMatch(/bus\.kind/);
    const e2 = errorOf(() => resolveConfig({ REGIONSYNC_REGION: 'ap-south-1' }, { configYaml: base }));
    expect(e2.message).toMatch(/region: expected one of regions/);
    const e3 = errorOf(() => resolveConfig({}, { configYaml: base.replace('postgres://u:secret-password@127.0.0.1:5432/db', 'not a url') }));
    expect(e3.message).toMatch(/database\.url/);
    expect(e3.message).not.toMatch(/not a url/);
  });

  it('reports invalid YAML and missing fields clearly', () => {
    expect(errorOf(() => resolveConfig({}, { configYaml: 'region: [', configPath: 'x.yaml' })).message).toMatch(/x\.yaml: not valid YAML/);
    expect(errorOf(() => resolveConfig({}, { configYaml: 'region: us-east-1\n' })).message).toMatch(/regions/);
  });
});
