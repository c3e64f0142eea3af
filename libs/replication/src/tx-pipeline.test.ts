import { describe, expect, it } from 'vitest';
import { sqlJson, sqlText, sqlTextArray } from './tx-pipeline.js';

describe('apply literals', () => {
  it('dollar-quote text without escaping it', () => {
    expect(sqlText("it's a\\b")).toBe("$rs$it's a\\b$rs$");
    expect(sqlText('')).toBe('$rs$$rs$');
  });
  it('pick a tag that cannot close early', () => {
    expect(sqlText('a$rs$b')).toBe('$rs1$a$rs$b$rs1$');
    // "x$rs" + "$rs$" would read as "x" followed by "rs$": the tag must change.
    expect(sqlText('x$rs')).toBe('$rs1$x$rs$rs1$');
    expect(sqlText('$rs$ and $rs1$')).toBe('$rs2$$rs$ and $rs1$$rs2$');
  });
  it('build jsonb and text[] literals', () => {
    expect(sqlJson({ a: 'x"y' })).toBe(`$rs${'$'}{"a":"x\\"y"}$rs$::jsonb`);
    expect(sqlTextArray([])).toBe("'{}'::text[]");
    expect(sqlTextArray(['a', "b'"])).toBe("array[$rs$a$rs$,$rs$b'$rs$]::text[]");
  });
});
