/**
 * Per-kernel shares of one DenseNet-121 training step, from tf.profile: which kernels dominate, and how much
 * of the step runs outside tfjs kernels (JavaScript: the float64 batch-norm sums, the optimizer's bookkeeping).
 * Relative cost; the absolute times are only right on a quiet machine.
 *
 *   npx tsx scripts/profile-step.ts [--backend wasm|webgpu|cpu] [--mode layer|bottleneck|naive|block]
 *                                   [--image-size 112] [--batch 8]
 *
 * Conv2DBackpropFilter over a [1, 1, K, M] input is a 1×1 weight gradient routed through the filter gradient
 * (src/ops/matmul.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendName } from '../src/backend/index.js';
import { densenet121 } from '../src/layers/index.js';
import { MEMORY_MODES, type MemoryMode } from '../src/layers/config.js';
import { MEASURING_OPTIMIZER, TrainingOptimizer, trainingStep } from '../src/step/step.js';

const argv = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
};
const mode = option('mode', 'layer') as MemoryMode;
if (!MEMORY_MODES.includes(mode)) throw new Error(`--mode must be one of ${MEMORY_MODES.join(', ')}; got '${mode}'`);
const size = Number(option('image-size', '112'));
const batch = Number(option('batch', '8'));
const backend = await initBackend(option('backend', 'wasm') as BackendName);
const model = densenet121({ numClasses: 4, inputShape: [size, size, 3], memoryMode: mode, seed: 1 });
const optimizer = new TrainingOptimizer(MEASURING_OPTIMIZER);
const xs = tf.randomNormal([batch, size, size, 3], 0, 1, 'float32', 1);
const ys = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 4), 'int32'), 4);
const step = async () => {
  const { loss, correct } = trainingStep(model, optimizer, xs, ys);
  await loss.data();
  tf.dispose([loss, correct]);
};
await step(); // warm-up: compilation, optimizer state
const start = performance.now();
const info = await tf.profile(step);
const wall = performance.now() - start;
const byKernel = new Map<string, { ms: number; calls: number }>();
let total = 0;
for (const kernel of info.kernels) {
  // Custom gradients appear as scopes around the kernels they run: count the kernels only.
  if (tf.getKernel(kernel.name, tf.getBackend()) === undefined) continue;
  const ms = typeof kernel.kernelTimeMs === 'number' ? kernel.kernelTimeMs : 0;
  let name = kernel.name;
  if (name.startsWith('Conv2D') || name === 'FusedConv2D') {
    const x = kernel.inputShapes[0] as number[];
    const filter = (name === 'Conv2DBackpropFilter' ? kernel.outputShapes[0] : kernel.inputShapes[1]) as number[];
    name += name === 'Conv2DBackpropFilter' && x[0] === 1 && x[1] === 1 ? ' (1×1 weight gradient via matmul.ts)' : ` ${filter[0]}×${filter[1]}`;
  }
  const entry = byKernel.get(name) ?? { ms: 0, calls: 0 };
  byKernel.set(name, { ms: entry.ms + ms, calls: entry.calls + 1 });
  total += ms;
}
const kernels = [...byKernel.values()].reduce((n, k) => n + k.calls, 0);
console.log(`DenseNet-121 ${size}², batch ${batch}, ${mode} on ${backend}: ${kernels} kernels, ${total.toFixed(0)} ms in kernels of a ${wall.toFixed(0)} ms profiled step`);
console.log(`${((100 * (wall - total)) / wall).toFixed(1).padStart(5)}% of the step outside tfjs kernels (JavaScript, profiling overhead)`);
console.log('share of the kernel time   ms      calls  kernel');
for (const [name, { ms, calls }] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 20)) {
  console.log(`${((100 * ms) / total).toFixed(1).padStart(5)}%  ${ms.toFixed(0).padStart(21)}  ${String(calls).padStart(9)}  ${name}`);
}
