import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { runBenchConfig, type BenchConfig } from '../src/bench/benchmark.js';
import { BENCH_MODES } from '../src/bench/config.js';
import { measureTrainingStep } from '../src/memory/measure.js';
import { tinyDenseNet } from './helpers/models.js';

afterAll(async () => {
  await initBackend('cpu');
});

async function stepOn(backend: 'wasm' | 'meta' | 'meta-wasm', config: BenchConfig) {
  await initBackend(backend);
  return runBenchConfig(config);
}

describe('the meta backend predicts a real training step to the byte', () => {
  // DenseNet-121 at 64², batch 4 on wasm (a real run, seconds) against meta. The cpu backend needs minutes per
  // DenseNet-121 step, so it is compared on a small DenseNet below and on DenseNet-121 by
  // scripts/check-meta-exactness.ts.
  it.each(BENCH_MODES)('densenet121 64² batch 4, %s: meta-wasm = wasm (buffers and engine), meta = wasm (engine)', async (mode) => {
    const config: BenchConfig = { model: 'densenet121', mode, batch: 4, imageSize: 64, numClasses: 4, steps: 1 };
    const wasm = await stepOn('wasm', config);
    const metaWasm = await stepOn('meta-wasm', config);
    const meta = await stepOn('meta', config);
    expect(metaWasm.stepPeakBytes).toBe(wasm.stepPeakBytes);
    expect(metaWasm.baselineBytes).toBe(wasm.baselineBytes);
    expect(metaWasm.engineStepPeakBytes).toBe(wasm.engineStepPeakBytes);
    expect(meta.engineStepPeakBytes).toBe(wasm.engineStepPeakBytes);
    expect(wasm.stepPeakBytes).toBeGreaterThan(0);
  });

  it.each(['naive', 'layer', 'bottleneck', 'block'] as const)('small DenseNet, %s: meta = cpu (buffers and engine)', async (mode) => {
    const measure = async (backend: 'cpu' | 'meta') => {
      await initBackend(backend);
      const model = tinyDenseNet(mode);
      const result = await measureTrainingStep({ model, batchSize: 3, seed: 2 });
      model.dispose();
      return result;
    };
    const cpu = await measure('cpu');
    const meta = await measure('meta');
    expect(meta.stepPeakBytes).toBe(cpu.stepPeakBytes);
    expect(meta.baselineBytes).toBe(cpu.baselineBytes);
    expect(meta.engine.stepPeakBytes).toBe(cpu.engine.stepPeakBytes);
    expect(meta.leakedTensors).toBe(0);
  });
});
