import { describe, expect, it } from 'vitest';
import { compareVersions, isVersion, maxVersion, validateVersion } from './version.js';

const h = (n: number) => `${String(n).padStart(15, '0')}.000000`;

describe('versions', () => {
  it('orders by hlc, then region name', () => {
    expect(compareVersions({ hlc: h(1), region: 'us-east-1' }, { hlc: h(2), region: 'ap-south-1' })).toBe(-1);
    expect(compareVersions({ hlc: h(2), region: 'us-east-1' }, { hlc: h(2), region: 'eu-west-1' })).toBe(1);
    expect(compareVersions({ hlc: h(2), region: 'eu-west-1' }, { hlc: h(2), region: 'eu-west-1' })).toBe(0);
  });

  it('maxVersion picks the newer', () => {
    const a = { hlc: h(1), region: 'eu-west-1' };
    const b = { hlc: h(1), region: 'us-east-1' };
    expect(maxVersion(a, b)).toBe(b);
    expect(maxVersion(b, a)).toBe(b);
  });

  it('validates and names the bad field', () => {
    expect(isVersion({ hlc: h(1), region: 'eu-west-1' })).toBe(true);
    expect(isVersion({ hlc: '1', region: 'eu-west-1' })).toBe(false);
    expect(() => validateVersion(null)).toThrowError(/RS_CONFLICT_INVALID_VERSION: version:/);
    expect(() => validateVersion({ hlc: 'x', region: 'eu-west-1' }, 'change.version')).toThrowError(/change\.version\.hlc/);
    expect(() => validateVersion({ hlc: h(1), region: 'EU' })).toThrowError(expect.objectContaining({ code: 'RS_CONFLICT_INVALID_VERSION' }));
  });
});
