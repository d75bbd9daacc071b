/**
 * The project's own WebAssembly (per-channel float64 sums on tfjs-backend-wasm's heap): the committed bytes
 * are the assembled source, and its sums are bit-identical to the same loop in JavaScript — so the batch-norm
 * statistics and gradients of a wasm step equal the cpu backend's, bit for bit.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { CHANNEL_SUMS_WASM } from '../src/backend/wasm/sums/channel-sums-wasm.js';
import { channelGradSums, channelMoments } from '../src/norm/channel-sums.js';
import { assembleChannelSums } from '../scripts/wasm-source.js';

/** Values with a large common offset per channel (|μ| ≫ σ), where careless sums cancel. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = 100 + (i % 7) + s / 2 ** 32;
  }
  return out;
}

async function on<T>(backend: 'cpu' | 'wasm', f: () => T): Promise<T> {
  await tf.setBackend(backend);
  return f();
}

beforeAll(async () => {
  await initBackend('cpu');
  await initBackend('wasm');
});

describe('channel sums in our wasm module', () => {
  it('the committed module is the assembled channel-sums.wat (npx tsx scripts/build-wasm.ts)', async () => {
    expect(Buffer.from(await assembleChannelSums()).toString('base64')).toBe(CHANNEL_SUMS_WASM);
  });

  for (const shape of [[4, 6, 5, 32], [3, 7, 7, 33], [50, 1], [2, 3, 3, 1024]]) {
    it(`moments and gradient sums on wasm equal the cpu backend's bit for bit: [${shape.join(', ')}]`, async () => {
      const size = shape.reduce((a, b) => a * b, 1);
      const run = () =>
        tf.tidy(() => {
          const x = tf.tensor(values(size, 1), shape);
          const dy = tf.tensor(values(size, 2).map((v) => v - 100.5), shape);
          const { mean, variance, count } = channelMoments(x);
          const sums = channelGradSums(dy, x, mean);
          return [mean, variance, sums.sumDy, sums.sumDyCentered].map((t) => Array.from(t.dataSync())).concat([[count]]);
        });
      const cpu = await on('cpu', run);
      const wasm = await on('wasm', run);
      expect(wasm).toEqual(cpu);
      // Not trivially equal: the variance of values ~100 ± 4 is recovered, not lost to cancellation.
      expect(cpu[1]!.every((v) => v > 0.05 && v < 10)).toBe(true);
    });
  }

  it('leaves no tensors or heap allocations behind', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor(values(4 * 32, 3), [4, 32]);
    const work = () => tf.tidy(() => channelGradSums(x, x, channelMoments(x).mean).sumDy.dataSync());
    work();
    const tensors = tf.memory().numTensors;
    const heap = ((tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8).byteLength;
    for (let i = 0; i < 100; i++) work();
    expect(tf.memory().numTensors).toBe(tensors);
    expect((tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.byteLength).toBe(heap);
    x.dispose();
  });
});
