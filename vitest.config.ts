import { defineConfig } from 'vitest/config';

// Three suites:
//  unit   - pure in-process tests (codec, crypto, engines back to back); run anywhere.
//  kernel - XFRM through the native addon in fresh network namespaces; need root and
//           a kernel with ESP (run inside scripts/vm-run when the host kernel lacks it).
//  e2e    - whole daemons in namespaces passing real ESP; same requirements as kernel.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 30_000 } },
      {
        test: {
          name: 'kernel',
          include: ['test/kernel/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 120_000,
          // namespaces and XFRM state are process-wide: one file at a time
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 600_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
