import { describe, expect, it } from 'vitest';
import { histogramQuantiles, parseMetrics } from './prom.js';

const scrapeOf = (counts: Record<string, number>, source = 'a') =>
  Object.entries(counts)
    .map(([le, n]) => `regionsync_apply_delay_seconds_bucket{le="${le}",source="${source}"} ${n}`)
    .join('\n');

describe('histogramQuantiles', () => {
  it('reads the quantiles of what was observed between two scrapes, summed over sources', () => {
    const before = parseMetrics(scrapeOf({ '0.001': 10, '0.01': 10, '+Inf': 10 }));
    const after = parseMetrics(`${scrapeOf({ '0.001': 10, '0.01': 60, '+Inf': 110 })}\n${scrapeOf({ '0.001': 0, '0.01': 50, '+Inf': 50 }, 'b')}`);
    const h = histogramQuantiles(after, before, 'regionsync_apply_delay_seconds', [0.5, 0.99]);
    // 150 new observations: 100 in (0.001, 0.01], 50 above 0.01.
    expect(h?.count).toBe(150);
    expect(h?.quantiles[0]).toBeCloseTo(0.001 + 0.009 * 0.75, 6);
    expect(h?.quantiles[1]).toBe(0.01);
  });

  it('is undefined when nothing was observed', () => {
    const m = parseMetrics(scrapeOf({ '0.001': 3, '+Inf': 3 }));
    expect(histogramQuantiles(m, m, 'regionsync_apply_delay_seconds', [0.5])).toBeUndefined();
  });
});
