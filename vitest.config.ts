import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Examples import the package by name, as a user's script does; tests run them against the sources.
    alias: [
      { find: /^efficient-densenet-tfjs$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
      { find: /^efficient-densenet-tfjs\/(train|bench|weights)$/, replacement: fileURLToPath(new URL('./src/$1/index.ts', import.meta.url)) },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
