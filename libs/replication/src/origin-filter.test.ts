import { describe, expect, it } from 'vitest';
import { chooseOriginFilter } from './origin-filter.js';

describe('chooseOriginFilter', () => {
  it("leaves applied transactions to the server ('none') on PostgreSQL 16+ with no foreign origin", () => {
    expect(chooseOriginFilter(160000, [], false)).toBe('none');
    expect(chooseOriginFilter(170006, [], false)).toBe('none');
  });

  it("stays on 'any' on PostgreSQL 15, which has no origin option", () => {
    expect(chooseOriginFilter(150014, [], false)).toBe('any');
  });

  it("stays on 'any' while a foreign origin exists, and once one was seen in this process", () => {
    expect(chooseOriginFilter(170006, ['user_native_sub'], false)).toBe('any');
    expect(chooseOriginFilter(170006, [], true)).toBe('any');
  });
});
