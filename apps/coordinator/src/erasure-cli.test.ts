import { describe, expect, it } from 'vitest';
import { errorCode } from '@regionsync/protocol';
import { parseErasureArgs } from './erasure-cli.js';

const BUS = ['--bus', 'nats', '--servers', 'nats://127.0.0.1:4222', '--regions', 'us-east-1,eu-west-1'];
const fixedId = () => 'er-1';

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(errorCode(err)).toBe('RS_CONFIG_INVALID');
    return (err as Error).message;
  }
  throw new Error('expected a usage error');
}

describe('parseErasureArgs', () => {
  it('parses a new erasure request with defaults', () => {
    expect(parseErasureArgs('erase', ['--subject', 'u-42', ...BUS], fixedId)).toEqual({
      command: 'erase', subject: 'u-42', requestId: 'er-1', bus: 'nats', servers: ['nats://127.0.0.1:4222'], prefix: 'regionsync', regions: ['us-east-1', 'eu-west-1'], waitS: 60,
    });
  });

  it('parses a status query and --opt=value forms', () => {
    const c = parseErasureArgs('erase', ['--status=er-7', ...BUS, '--wait-s=0', '--prefix=rs-x'], fixedId);
    expect(c).toMatchObject({ command: 'erase', status: 'er-7', requestId: 'er-7', waitS: 0, prefix: 'rs-x' });
  });

  it('names the argument and what was expected', () => {
    expect(messageOf(() => parseErasureArgs('erase', BUS))).toMatch(/exactly one of --subject/);
    expect(messageOf(() => parseErasureArgs('erase', ['--subject', 'x', '--status', 'er-1', ...BUS]))).toMatch(/exactly one of/);
    expect(messageOf(() => parseErasureArgs('erase', ['--subject', 'x', '--bus', 'amqp', '--servers', 'a', '--regions', 'us-east-1']))).toMatch(/--bus: expected nats or kafka/);
    expect(messageOf(() => parseErasureArgs('erase', ['--subject', 'x', ...BUS, '--wait-s', '-1']))).toMatch(/--wait-s: expected a value|--wait-s: expected whole seconds/);
    expect(messageOf(() => parseErasureArgs('erase', ['--subject', 'x', ...BUS, '--wait-s', 'soon']))).toMatch(/--wait-s: expected whole seconds/);
    expect(messageOf(() => parseErasureArgs('erase', ['--subject', 'x', ...BUS, '--regions', 'x']))).toMatch(/--regions given twice/);
    expect(messageOf(() => parseErasureArgs('erase', ['--subject', 'x', '--bus', 'nats', '--servers', 'a', '--regions', 'EU West']))).toMatch(/--regions: expected region names/);
    expect(messageOf(() => parseErasureArgs('erase', ['--subject', 'x', ...BUS, '--tables', 'users']))).toMatch(/--tables: expected schema.table/);
    expect(messageOf(() => parseErasureArgs('erase', ['--subject', 'x', ...BUS, '--request-id', 'a b']))).toMatch(/--request-id: expected/);
    expect(messageOf(() => parseErasureArgs('erase', ['--subject', 'x', ...BUS, '--db', 'x']))).toMatch(/unknown option "--db"/);
    expect(messageOf(() => parseErasureArgs('erase', ['stray']))).toMatch(/unexpected argument at position 1/);
  });

  it('parses export with one --db per region', () => {
    expect(parseErasureArgs('export', ['--subject', 'u-1', '--policy', 'p.yaml', '--db', 'eu-west-1=postgres://h/db', '--db', 'us-east-1=postgresql://h/db2'])).toEqual({
      command: 'export', subject: 'u-1', policy: 'p.yaml', dbs: [{ region: 'eu-west-1', url: 'postgres://h/db' }, { region: 'us-east-1', url: 'postgresql://h/db2' }],
    });
  });

  it('rejects a bad export invocation with the field named', () => {
    expect(messageOf(() => parseErasureArgs('export', ['--policy', 'p', '--db', 'eu-west-1=postgres://h/d']))).toMatch(/--subject: required/);
    expect(messageOf(() => parseErasureArgs('export', ['--subject', 's', '--db', 'eu-west-1=postgres://h/d']))).toMatch(/--policy: required/);
    expect(messageOf(() => parseErasureArgs('export', ['--subject', 's', '--policy', 'p']))).toMatch(/--db: required/);
    expect(messageOf(() => parseErasureArgs('export', ['--subject', 's', '--policy', 'p', '--db', 'postgres://h/d']))).toMatch(/--db: expected <region>=<postgres-url>/);
    expect(messageOf(() => parseErasureArgs('export', ['--subject', 's', '--policy', 'p', '--db', 'eu-west-1=mysql://h/d']))).toMatch(/expected a postgres/);
    expect(messageOf(() => parseErasureArgs('export', ['--subject', 's', '--policy', 'p', '--db', 'eu-west-1=postgres://a/b', '--db', 'eu-west-1=postgres://c/d']))).toMatch(/each region at most once/);
  });
});
