/**
 * Runs the same training steps in PyTorch on this machine (Debian's python3-torchvision), so tfjs and
 * PyTorch are timed side by side in one run — the only comparison that holds on noisy shared machines.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { torchvisionCounterpart } from '../layers/memory-modes.js';
import { WARMUP_STEPS } from '../memory/measure.js';
import { openStepper, STEPPER_WARMUP_STEPS, type Stepper } from './stepper.js';
import type { BenchMode } from './config.js';

const run = promisify(execFile);

/** PyTorch's two modes, as bench rows name them: plain, and `memory_efficient=True` (its bottleneck recomputation). */
export type PyTorchMode = 'pytorch-naive' | 'pytorch-memory-efficient';

export interface PyTorchTiming {
  mode: PyTorchMode;
  batch: number;
  msPerStep: number;
}

/** The PyTorch mode a tfjs mode is compared with: its torchvision counterpart in the mode table. */
export function pytorchModeFor(mode: BenchMode): PyTorchMode {
  return torchvisionCounterpart(mode) === 'memory_efficient=True' ? 'pytorch-memory-efficient' : 'pytorch-naive';
}

const SCRIPT = fileURLToPath(new URL('../../python/pytorch_step.py', import.meta.url));

/** The Python interpreter that has torch and torchvision, or null. */
export async function findPyTorch(): Promise<string | null> {
  for (const python of ['/usr/bin/python3', 'python3']) {
    try {
      await run(python, ['-c', 'import torch, torchvision'], { timeout: 60_000 });
      return python;
    } catch {
      // try the next interpreter
    }
  }
  return null;
}

export async function timePyTorch(options: {
  python: string;
  model: string;
  imageSize: number;
  batches: number[];
  modes: BenchMode[];
  steps: number;
  threads: number;
  numClasses: number;
}): Promise<PyTorchTiming[]> {
  // PyTorch's memory_efficient=True is the bottleneck recomputation; our leaner modes are compared against it too.
  const modes = [...new Set(options.modes.map(pytorchModeFor))];
  const { stdout } = await run(
    options.python,
    [SCRIPT, options.model, String(options.imageSize), options.batches.join(','), modes.join(','), String(options.steps), String(options.threads), String(options.numClasses), String(WARMUP_STEPS)],
    { timeout: 3_600_000, maxBuffer: 16 * 1024 * 1024 },
  );
  return stdout
    .split('\n')
    .filter((line) => line.trim().startsWith('{'))
    .map((line) => JSON.parse(line) as PyTorchTiming);
}

/** One PyTorch configuration loaded in a process of its own and warmed up, stepped on demand (`bench --repeat`). */
export function openPyTorchStepper(options: { python: string; model: string; imageSize: number; batch: number; mode: PyTorchMode; threads: number; numClasses: number }): Promise<Stepper> {
  const { python, model, imageSize, batch, mode, threads, numClasses } = options;
  return openStepper(python, [SCRIPT, 'serve', model, String(imageSize), String(batch), mode, String(threads), String(numClasses), String(STEPPER_WARMUP_STEPS)]);
}
