import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { measureTrainingStep } from '../src/memory/measure.js';
import { memoryModeOfModel, setMemoryMode } from '../src/layers/model-modes.js';
import { describePlan, planMemory } from '../src/memory/plan.js';
import { WEBGPU_PEAK_FACTOR } from '../src/backend/traits.js';
import { tinyDenseNet } from './helpers/models.js';

beforeAll(async () => {
  await initBackend('cpu');
});
afterAll(async () => {
  await initBackend('cpu');
});

/** The whole step of a plan, measured independently: a fresh model on meta with the plan's modes. */
async function measuredOnMeta(modes: Parameters<typeof setMemoryMode>[1], batchSize: number): Promise<number> {
  await initBackend('meta');
  const model = tinyDenseNet('naive');
  setMemoryMode(model, modes);
  const m = await measureTrainingStep({ model, batchSize, seed: 1 });
  model.dispose();
  await initBackend('cpu');
  return m.peakBytes;
}

describe('planMemory', () => {
  const batchSize = 6;
  // On tensorflow's cost factors naive is the fastest mode, so an unconstrained plan is all-naive.
  const costBackend = 'tensorflow';

  it('meets three budgets (measured on meta), gives the fastest plan when everything fits, and leaves the live model alone', async () => {
    const model = tinyDenseNet('layer');
    const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
    const roomy = await planMemory({ model, batchSize, budget: '1GiB', costBackend, apply: false });
    expect(roomy.modes).toEqual(['naive', 'naive']);
    expect(memoryModeOfModel(model)).toBe('layer'); // apply: false
    const naiveBytes = roomy.wholeStepBytes;
    const smallest = roomy.smallestWholeStepBytes;
    expect(smallest).toBeLessThan(naiveBytes);
    const budgets = [naiveBytes, Math.round((naiveBytes + smallest) / 2), smallest];
    const chosen: string[] = [];
    for (const budget of budgets) {
      const plan = await planMemory({ model, batchSize, budget, costBackend });
      expect(plan.wholeStepBytes).toBeLessThanOrEqual(budget);
      expect(await measuredOnMeta(plan.modes, batchSize)).toBe(plan.wholeStepBytes);
      expect(memoryModeOfModel(model)).toBe([...new Set([plan.modes[0], plan.modes[1]])].join('+'));
      chosen.push(plan.modes.join('/'));
      expect(plan.relativeTime).toBeGreaterThanOrEqual(1);
    }
    expect(chosen[0]).toBe('naive/naive'); // a budget that fits naive everywhere gets the fastest plan
    expect(chosen[2]).toBe('block/block'); // only the leanest plan fits the smallest budget
    expect(tf.getBackend()).toBe('cpu');
    expect(model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(weights);
    model.dispose();
  });

  // webgpu's GPU holds its buffer pool, bounded at WEBGPU_PEAK_FACTOR × the tensors (src/backend/webgpu/pool.ts): a
  // budget for webgpu must hold that much, planned on meta like any other (same cost class as tensorflow here).
  it('for webgpu the budget bounds what its GPU holds: the step × the pool’s bound', async () => {
    const model = tinyDenseNet('layer');
    const roomy = await planMemory({ model, batchSize, budget: '1GiB', costBackend: 'webgpu', apply: false });
    expect(roomy.modes).toEqual(['naive', 'naive']);
    expect(roomy.backendPeakFactor).toBe(WEBGPU_PEAK_FACTOR);
    expect(roomy.backendPeakBytes).toBe(Math.ceil(roomy.wholeStepBytes * WEBGPU_PEAK_FACTOR));
    // The tensors of the all-naive step fit this budget exactly, what webgpu holds for them does not.
    const budget = roomy.wholeStepBytes;
    const onTensorflow = await planMemory({ model, batchSize, budget, costBackend, apply: false });
    expect(onTensorflow.modes).toEqual(['naive', 'naive']);
    expect(onTensorflow.backendPeakBytes).toBe(onTensorflow.wholeStepBytes);
    const onWebgpu = await planMemory({ model, batchSize, budget, costBackend: 'webgpu', apply: false });
    expect(onWebgpu.modes).not.toEqual(['naive', 'naive']);
    expect(onWebgpu.backendPeakBytes).toBeLessThanOrEqual(budget);
    expect(describePlan(onWebgpu)).toMatch(/webgpu holds ≤ [\d,.]+ MiB \(× 1\.15\) of /);
    await expect(planMemory({ model, batchSize, budget: roomy.smallestWholeStepBytes, costBackend: 'webgpu' })).rejects.toThrow(
      /smallest whole step any plan needs is [\d,.]+ MiB \(× 1\.15: what webgpu holds beyond its tensors\)/,
    );
    model.dispose();
  });

  it('a budget nothing fits names the smallest budget that would', async () => {
    const model = tinyDenseNet('layer');
    await expect(planMemory({ model, batchSize, budget: 1000, costBackend })).rejects.toThrow(/smallest whole step any plan needs is [\d,]+ MiB/);
    expect(() => setMemoryMode(model, ['naive'])).toThrow(/one per dense block \(2\)/);
    await expect(planMemory({ model, batchSize, budget: 'lots' })).rejects.toThrow(/planMemory: budget: 'lots' is not a size; use a positive number with a unit, e.g. 4GiB, 512MiB, 16GB \(or a number of bytes\)/);
    model.dispose();
  });
});
