import { PgoutputPlugin } from 'pg-logical-replication';
import type { Client } from 'pg';
import type { OriginFilter } from './origin-filter.js';
import { isRegionsyncOrigin } from './sql-names.js';

const identity = (raw: unknown) => raw;
type Parsed = ReturnType<PgoutputPlugin['parse']>;
// pgoutput message type bytes of row changes.
const ROW_TAGS: Record<number, 'insert' | 'update' | 'delete'> = { 0x49: 'insert', 0x55: 'update', 0x44: 'delete' };

/**
 * pgoutput with every value kept in PostgreSQL's text format: lossless for every type
 * (bigint, numeric, timestamptz, jsonb…) and exactly what apply writes back. The stock
 * plugin converts values with pg's type parsers; we swap each column's parser for the
 * identity as soon as its relation message is parsed, before any tuple uses it.
 *
 * Row changes of a transaction that apply wrote (its origin message names a regionsync
 * origin) are not decoded at all: the assembler drops them unread (no echo), and
 * decoding them was about a quarter of a destination agent's CPU while it applied. On
 * PostgreSQL 16+ the server can leave them out itself (`origin`, see origin-filter.ts);
 * PostgreSQL 15's pgoutput has no such option.
 */
export class TextPgoutputPlugin extends PgoutputPlugin {
  private inEcho = false;
  /**
   * Messages parsed so far. The replication service parses each message as it arrives, in
   * order with the server's keepalives, but hands it to the data handler later (flow
   * control queues it): comparing this with what the handler finished tells whether a
   * keepalive found everything before it handled.
   */
  received = 0;

  constructor(private readonly textOptions: ConstructorParameters<typeof PgoutputPlugin>[0] & { origin?: OriginFilter }) {
    super(textOptions);
  }

  override start(client: Client, slotName: string, lastLsn: string): Promise<unknown> {
    const origin = this.textOptions.origin;
    if (origin === undefined) return super.start(client, slotName, lastLsn);
    const o = this.textOptions;
    const options = [`proto_version '${o.protoVersion}'`, `publication_names '${o.publicationNames.join(',')}'`, `messages '${o.messages ?? false}'`, `origin '${origin}'`];
    return client.query(`START_REPLICATION SLOT "${slotName}" LOGICAL ${lastLsn} (${options.join(', ')})`);
  }

  override parse(buffer: Buffer): Parsed {
    this.received += 1;
    const rowTag = ROW_TAGS[buffer[0]!];
    if (this.inEcho && rowTag !== undefined) return { tag: rowTag, echo: true } as unknown as Parsed;
    const msg = super.parse(buffer);
    if (msg.tag === 'begin') this.inEcho = false;
    else if (msg.tag === 'origin') this.inEcho = isRegionsyncOrigin(msg.originName);
    else if (msg.tag === 'relation') for (const c of msg.columns) c.parser = identity;
    return msg;
  }
}
