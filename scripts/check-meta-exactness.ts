/**
 * DenseNet-121 at 64², batch 4, every mode: the training step's memory on the real `cpu` backend against
 * the `meta` backend's prediction, to the byte. Too slow for CI (the cpu backend needs minutes per step);
 * the CI test compares DenseNet-121 on wasm and a small DenseNet on cpu. Run: npx tsx scripts/check-meta-exactness.ts
 */
import { initBackend } from '../src/backend/index.js';
import { runBenchConfig, type BenchConfig } from '../src/bench/benchmark.js';
import { BENCH_MODES } from '../src/bench/config.js';

let mismatches = 0;
for (const mode of BENCH_MODES) {
  const config: BenchConfig = { model: 'densenet121', mode, batch: 4, imageSize: 64, numClasses: 4, steps: 1 };
  await initBackend('cpu');
  const started = Date.now();
  const cpu = await runBenchConfig(config);
  const seconds = (Date.now() - started) / 1000;
  await initBackend('meta');
  const meta = await runBenchConfig(config);
  const same = cpu.stepPeakBytes === meta.stepPeakBytes && cpu.engineStepPeakBytes === meta.engineStepPeakBytes && cpu.baselineBytes === meta.baselineBytes;
  if (!same) mismatches++;
  console.log(
    `${mode.padEnd(10)} cpu: step peak ${cpu.stepPeakBytes} B (engine ${cpu.engineStepPeakBytes} B, baseline ${cpu.baselineBytes} B, ${seconds.toFixed(0)} s) | ` +
      `meta: ${meta.stepPeakBytes} B (engine ${meta.engineStepPeakBytes} B, baseline ${meta.baselineBytes} B) → ${same ? 'identical' : 'DIFFERENT'}`,
  );
}
process.exitCode = mismatches === 0 ? 0 : 1;
