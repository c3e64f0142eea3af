import { describe, expect, it } from 'vitest';
import { sqlJson, sqlText, sqlTextArray } from './tx-pipeline.js';

describe('apply literals', () => {
  it('escape backslashes and quotes in an escape string', () => {
    expect(sqlText("it's")).toBe("E'it''s'");
    expect(sqlText('a\\b')).toBe("E'a\\\\b'");
    expect(sqlText("\\'")).toBe("E'\\\\'''");
  });
  it('build jsonb and text[] literals', () => {
    expect(sqlJson({ a: 'x"y' })).toBe(`E'{"a":"x\\\\"y"}'::jsonb`);
    expect(sqlTextArray([])).toBe("'{}'::text[]");
    expect(sqlTextArray(['a', "b'"])).toBe("array[E'a',E'b''']::text[]");
  });
});
