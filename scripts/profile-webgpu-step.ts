/**
 * Per-kernel shares of one DenseNet-121 training step (64², batch 4) on the webgpu backend, from tf.profile:
 * relative cost only (which kernels dominate), never an absolute speed. Run: npx tsx scripts/profile-webgpu-step.ts [layer|bottleneck|naive]
 * Conv2DBackpropFilter over a [1, 1, K, M] input is a 1×1 weight gradient routed through the filter gradient
 * (src/checkpoint/matmul.ts); on webgpu there should be none.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { densenet121 } from '../src/layers/index.js';
import { trainStep } from '../src/step/step.js';

const mode = process.argv[2] ?? 'layer';
if (!['layer', 'bottleneck', 'naive'].includes(mode)) throw new Error(`mode must be layer, bottleneck or naive; got '${mode}'`);
await initBackend('webgpu');
const model = densenet121({ numClasses: 4, inputShape: [64, 64, 3], memoryEfficient: mode !== 'naive', recompute: mode === 'bottleneck' ? 'bottleneck' : 'layer', seed: 1 });
const optimizer = tf.train.momentum(0.01, 0.9);
const xs = tf.randomNormal([4, 64, 64, 3], 0, 1, 'float32', 1);
const ys = tf.oneHot(tf.tensor1d([0, 1, 2, 3], 'int32'), 4);
const step = async () => {
  const loss = trainStep(model, optimizer, xs, ys);
  await loss.data();
  loss.dispose();
};
await step(); // warm-up: shader compilation, optimizer state
const info = await tf.profile(step);
const byKernel = new Map<string, number>();
let total = 0;
for (const kernel of info.kernels) {
  const ms = typeof kernel.kernelTimeMs === 'number' ? kernel.kernelTimeMs : 0;
  let name = kernel.name;
  if (name.startsWith('Conv2D') || name === 'FusedConv2D') {
    const x = kernel.inputShapes[0] as number[];
    const filter = (name === 'Conv2DBackpropFilter' ? kernel.outputShapes[0] : kernel.inputShapes[1]) as number[];
    name += name === 'Conv2DBackpropFilter' && x[0] === 1 && x[1] === 1 ? ' (1×1 weight gradient via matmul.ts)' : ` ${filter[0]}×${filter[1]}`;
  }
  byKernel.set(name, (byKernel.get(name) ?? 0) + ms);
  total += ms;
}
console.log(`${mode}: ${info.kernels.length} kernels; share of the summed kernel time`);
for (const [name, ms] of [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${((100 * ms) / total).toFixed(1).padStart(5)}%  ${name}`);
