// Shared vitest settings: resolve workspace packages to their TypeScript sources so
// tests never depend on a prior build.
import { basename } from 'node:path';
import { defineConfig } from 'vitest/config';

export const sourceCondition = '@regionsync/source';

// npm test collects every run's JSON results to print one closing count.
function reporters(kind: string) {
  const dir = process.env.REGIONSYNC_TEST_RESULTS;
  if (!dir) return {};
  return { reporters: ['default', 'json'], outputFile: { json: `${dir}/${basename(process.cwd())}-${kind}.json` } };
}

export function unitConfig() {
  return defineConfig({
    resolve: { conditions: [sourceCondition, 'node', 'development|production'] },
    ssr: { resolve: { conditions: [sourceCondition, 'node', 'development|production'] } },
    test: { include: ['src/**/*.test.ts'], exclude: ['src/**/*.int.test.ts', '**/node_modules/**', '**/dist/**'], testTimeout: 20_000, ...reporters('unit') },
  });
}

export function intConfig() {
  return defineConfig({
    resolve: { conditions: [sourceCondition, 'node', 'development|production'] },
    ssr: { resolve: { conditions: [sourceCondition, 'node', 'development|production'] } },
    test: {
      include: ['src/**/*.int.test.ts'],
      globalSetup: [new URL('./tools/stack/src/vitest-global-setup.ts', import.meta.url).pathname],
      fileParallelism: false,
      testTimeout: 180_000,
      hookTimeout: 900_000,
      ...reporters('int'),
    },
  });
}
