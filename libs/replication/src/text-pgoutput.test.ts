import { describe, expect, it } from 'vitest';
import { TextPgoutputPlugin } from './text-pgoutput.js';

// Hand-built pgoutput (protocol 1) messages, enough for the plugin's parser.
function begin(xid: number): Buffer {
  const b = Buffer.alloc(21);
  b.write('B', 0);
  b.writeBigUInt64BE(0x100n, 1);
  b.writeBigInt64BE(0n, 9);
  b.writeUInt32BE(xid, 17);
  return b;
}
function origin(name: string): Buffer {
  const b = Buffer.alloc(1 + 8 + Buffer.byteLength(name) + 1);
  b.write('O', 0);
  b.writeBigUInt64BE(0x100n, 1);
  b.write(name, 9);
  return b;
}
// A row change whose body is garbage: decoding it would throw (unknown relation).
const garbageRow = (type: 'I' | 'U' | 'D') => Buffer.concat([Buffer.from(type), Buffer.from([0, 0, 0, 99, 0x4e, 0xff])]);

describe('TextPgoutputPlugin', () => {
  const plugin = () => new TextPgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });

  it('does not decode row changes inside a transaction applied by regionsync', () => {
    const p = plugin();
    expect(p.parse(begin(1))).toMatchObject({ tag: 'begin', xid: 1 });
    expect(p.parse(origin('regionsync_db_eu_west_1'))).toMatchObject({ tag: 'origin', originName: 'regionsync_db_eu_west_1' });
    expect(p.parse(garbageRow('I'))).toEqual({ tag: 'insert', echo: true });
    expect(p.parse(garbageRow('U'))).toEqual({ tag: 'update', echo: true });
    expect(p.parse(garbageRow('D'))).toEqual({ tag: 'delete', echo: true });
  });

  it('decodes row changes of local transactions and of foreign origins, from the next begin on', () => {
    const p = plugin();
    p.parse(begin(1));
    p.parse(origin('regionsync_db_eu_west_1'));
    p.parse(begin(2));
    expect(() => p.parse(garbageRow('I'))).toThrow();
    p.parse(begin(3));
    p.parse(origin('some_other_replication'));
    expect(() => p.parse(garbageRow('I'))).toThrow();
  });
});
