import { PgoutputPlugin } from 'pg-logical-replication';

const identity = (raw: unknown) => raw;

/**
 * pgoutput with every value kept in PostgreSQL's text format: lossless for every type
 * (bigint, numeric, timestamptz, jsonb…) and exactly what apply writes back. The stock
 * plugin converts values with pg's type parsers; we swap each column's parser for the
 * identity as soon as its relation message is parsed, before any tuple uses it.
 */
export class TextPgoutputPlugin extends PgoutputPlugin {
  override parse(buffer: Buffer): ReturnType<PgoutputPlugin['parse']> {
    const msg = super.parse(buffer);
    if (msg.tag === 'relation') for (const c of msg.columns) c.parser = identity;
    return msg;
  }
}
