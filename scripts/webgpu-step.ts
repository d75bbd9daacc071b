/**
 * One training step's time on webgpu (our kernels), on webgpu with tfjs-webgpu's stock kernels put back, and
 * on wasm, in one run: each configuration in a process of its own (a backend per process, as `bench`),
 * alternated in rounds with the order reversed every other round; min and median per configuration and the
 * ratios to wasm.
 *
 *   npx tsx scripts/webgpu-step.ts [--model densenet121] [--image-size 64] [--batch 4] [--mode layer]
 *                                  [--steps 2] [--rounds 2] [--configs webgpu,webgpu-stock,wasm]
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
};
const CONFIGS = ['webgpu', 'webgpu-stock', 'wasm'] as const;
type Config = (typeof CONFIGS)[number];

if (argv[0] === '--child') {
  const [, config, model, size, batch, mode, steps] = argv as [string, Config, string, string, string, string, string];
  const tf = await import('@tensorflow/tfjs');
  const { initBackend } = await import('../src/backend/index.js');
  const layers = await import('../src/layers/index.js');
  const { measureTrainingStep } = await import('../src/memory/measure.js');
  await initBackend(config === 'wasm' ? 'wasm' : 'webgpu');
  if (config === 'webgpu-stock') (await import('../src/backend/webgpu/index.js')).unregisterWebGPUTrainingKernels();
  const build = (layers as unknown as Record<string, (o: object) => import('@tensorflow/tfjs').LayersModel>)[model]!;
  const net = build({ numClasses: 4, inputShape: [Number(size), Number(size), 3], memoryMode: mode, seed: 1 });
  const m = await measureTrainingStep({ model: net, batchSize: Number(batch), imageSize: Number(size), numClasses: 4, steps: Number(steps) });
  net.dispose();
  void tf;
  process.stdout.write(`${JSON.stringify({ config, msPerStep: m.msPerStep, backend: m.backend })}\n`);
} else {
  const model = flag('model', 'densenet121');
  const size = flag('image-size', '64');
  const batch = flag('batch', '4');
  const mode = flag('mode', 'layer');
  const steps = flag('steps', '2');
  const rounds = Number(flag('rounds', '2'));
  const configs = flag('configs', CONFIGS.join(',')).split(',') as Config[];
  for (const c of configs) if (!CONFIGS.includes(c)) throw new Error(`--configs: each must be one of ${CONFIGS.join(', ')}; got '${c}'`);
  const self = fileURLToPath(import.meta.url);
  const times = new Map<Config, number[]>(configs.map((c) => [c, []]));
  for (let r = 0; r < rounds; r++) {
    for (const config of r % 2 ? [...configs].reverse() : configs) {
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', self, '--child', config, model, size, batch, mode, steps], {
        maxBuffer: 1 << 24,
      });
      const line = stdout.trim().split('\n').pop()!;
      const { msPerStep } = JSON.parse(line) as { msPerStep: number };
      times.get(config)!.push(msPerStep);
      console.log(`round ${r + 1}: ${config} ${msPerStep.toFixed(0)} ms/step`);
    }
  }
  const stat = (c: Config) => {
    const t = [...times.get(c)!].sort((a, b) => a - b);
    return { min: t[0]!, median: t[Math.floor(t.length / 2)]! };
  };
  console.log(`\n${model} ${size}², batch ${batch}, ${mode}; ms/step min / median of ${rounds} rounds (median of ${steps} steps each)`);
  for (const c of configs) {
    const s = stat(c);
    const vsWasm = configs.includes('wasm') && c !== 'wasm' ? `  (${(s.min / stat('wasm').min).toFixed(1)}× wasm by min, ${(s.median / stat('wasm').median).toFixed(1)}× by median)` : '';
    console.log(`${c.padEnd(13)} ${s.min.toFixed(0).padStart(7)} / ${s.median.toFixed(0).padStart(7)}${vsWasm}`);
  }
}
