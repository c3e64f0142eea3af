import { describe, expect, it } from 'vitest';
import { serverVersionProblem } from './setup.js';

describe('serverVersionProblem', () => {
  it('accepts PostgreSQL 15 and newer', () => {
    for (const v of ['150000', '150014', '160010', '170006', '180001']) expect(serverVersionProblem(v), v).toBeUndefined();
  });

  it('names the version found and the one needed for an older server', () => {
    expect(serverVersionProblem('140017')).toBe('server version is 14 (server_version_num 140017), needs PostgreSQL 15 or newer (upgrade the server; regionsync is tested on 15 and 17)');
  });

  it('says what it expected when the setting is not a version number', () => {
    expect(serverVersionProblem(undefined)).toMatch(/^server_version_num is '', expected a number/);
    expect(serverVersionProblem('abc')).toMatch(/^server_version_num is 'abc'/);
  });
});
