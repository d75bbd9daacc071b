/**
 * The processes `bench --repeat` steps in turn (src/bench/stepper.ts): a real tfjs configuration loaded in a
 * child process and stepped on demand, PyTorch's counterpart where torch is installed, and how a process that
 * fails to load, crashes or dies mid-step is reported — by small real processes speaking the same protocol.
 */
import { describe, expect, it } from 'vitest';
import { findPyTorch, openPyTorchStepper } from '../src/bench/pytorch.js';
import { openBenchStepper, openStepper } from '../src/bench/stepper.js';

const node = (script: string) => openStepper(process.execPath, ['-e', script]);

describe('steppers: one configuration per process, stepped on demand', () => {
  it('a tfjs configuration loads once, warms up, then times each step it is asked for', async () => {
    const stepper = await openBenchStepper({ model: 'densenet121', mode: 'layer', batch: 2, imageSize: 32, numClasses: 4, steps: 1 }, 'cpu', 1);
    try {
      const times = [await stepper.step(), await stepper.step()];
      for (const ms of times) expect(ms).toBeGreaterThan(0);
    } finally {
      await stepper.close();
    }
    // Closed: a further step says so instead of hanging.
    await expect(stepper.step()).rejects.toThrow(/has ended/);
  }, 120_000);

  it('a configuration that fails while loading says why', async () => {
    // One image of 32² reaches the last block at 1×1: training-mode batch norm has one value per channel.
    const opening = openBenchStepper({ model: 'densenet121', mode: 'layer', batch: 1, imageSize: 32, numClasses: 4, steps: 1 }, 'cpu', 1);
    await expect(opening).rejects.toThrow(/got 1 value per channel in training mode \(batch 1 at 1×1 spatial size\)/);
  }, 120_000);

  it('a process that exits before it is ready, or is killed during a step, is reported in one line', async () => {
    await expect(node('process.stderr.write("Error: no backend\\n"); process.exit(3)')).rejects.toThrow('crashed (exit 3): Error: no backend');
    const dying = await node(`
      console.log(JSON.stringify({ ready: true }));
      require('node:readline').createInterface({ input: process.stdin }).on('line', () => process.kill(process.pid, 'SIGKILL'));
    `);
    await expect(dying.step()).rejects.toThrow('crashed: killed by SIGKILL (out of memory?)');
    await dying.close();
  });

  it('an error answered for one step rejects that step only', async () => {
    const flaky = await node(`
      console.log('a library prints something'); // not a protocol line: ignored
      console.log(JSON.stringify({ ready: true }));
      let n = 0;
      require('node:readline').createInterface({ input: process.stdin }).on('line', () =>
        console.log(JSON.stringify(n++ === 0 ? { error: 'out of memory in step 1' } : { ms: 42 })));
    `);
    try {
      await expect(flaky.step()).rejects.toThrow('out of memory in step 1');
      expect(await flaky.step()).toBe(42);
    } finally {
      await flaky.close();
    }
  });
});

const python = await findPyTorch();

describe.skipIf(python === null)('PyTorch stepper (python3-torchvision)', () => {
  it('loads torchvision DenseNet-121 once and times steps on demand', async () => {
    const stepper = await openPyTorchStepper({ python: python!, model: 'densenet121', imageSize: 32, batch: 2, mode: 'pytorch-naive', threads: 1, numClasses: 4 });
    try {
      expect(await stepper.step()).toBeGreaterThan(0);
    } finally {
      await stepper.close();
    }
  }, 120_000);
});
