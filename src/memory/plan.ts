/**
 * planMemory: a memory mode per dense block so that a whole training step (weights, optimizer state, batch
 * and the step's peak) fits a budget at the least predicted time.
 *
 * Bytes are exact, from the meta backend, on a shape-only copy of the model built from its JSON topology: the
 * live model is never touched there (a meta kernel reading a live tensor would move it and drop its values).
 * The search: measure the plan with every block in the leanest mode (the mode table's first), and each block alone switched to
 * each other mode; predict a plan's peak as the first plus the sum of its blocks' differences; walk the plans in
 * order of predicted time and measure the first whose prediction fits — taken if the measurement fits too.
 * Time is predicted by the cost model in ./cost.ts, never timed.
 * On a backend that holds more than its tensors (webgpu's GPU buffer pool) the budget bounds that: the whole
 * step times the backend's bounded multiple (BackendTraits.backendPeakFactor).
 *
 * A dense block's mode also applies to the stem, transition or final norm beside it (layers/model-modes.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend/index.js';
import { measureTrainingStep } from './measure.js';
import type { OptimizerSettings } from '../step/optimizers.js';
import { backendTraits, type BackendTraits } from '../backend/traits.js';
import { inputImageSize } from '../layers/densenet.js';
import { LEANEST_MODE, MEMORY_MODES, type MemoryMode } from '../layers/memory-modes.js';
import { partsOf, setMemoryMode } from '../layers/model-modes.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { UsageError } from '../util/errors.js';
import { formatMiB as formatMiBOf, formatSize } from '../util/format.js';
import { byteSize, integer } from '../util/validate.js';
import { blockCost, costFactorsFor, stemMacs, type BlockShape } from './cost.js';

export interface PlanMemoryOptions {
  /** A DenseNet built by this library (its dense blocks are planned); its weights are never read. */
  model: tf.LayersModel;
  batchSize: number;
  /** Square input size; default: the model's input size. */
  imageSize?: number;
  /** Bytes for the whole step, or a size such as '4GiB', '512MiB', '16GB'. */
  budget: number | string;
  /** Classes of the labels; default: the model's output width. */
  numClasses?: number;
  /** The optimizer whose state counts in the step (default: MEASURING_OPTIMIZER, SGD: one state per weight; Adam keeps two). */
  optimizer?: OptimizerSettings;
  /**
   * The backend the plan is for: its costs rank the plans, and where it holds more than the tensors (webgpu's
   * GPU buffer pool, BackendTraits.backendPeakFactor) that multiple of the step must fit the budget. Default:
   * the current backend.
   */
  costBackend?: string;
  /** Switch the model's layers to the plan (default true). */
  apply?: boolean;
  logger?: Logger;
}

export interface BlockPlan {
  /** The dense block's layer name. */
  name: string;
  mode: MemoryMode;
  /** Predicted time of the block (with its transition, and the stem for block 1) relative to its fastest mode. */
  relativeTime: number;
}

export interface MemoryPlan {
  /** One mode per dense block, in order. */
  modes: MemoryMode[];
  blocks: BlockPlan[];
  budgetBytes: number;
  /** Whole step as measured on the meta backend: weights, optimizer state, batch and the step's peak. */
  wholeStepBytes: number;
  /** Weights, optimizer state and batch. */
  baselineBytes: number;
  /** The step's peak above the baseline. */
  stepPeakBytes: number;
  /** Predicted time of the step relative to the fastest plan, budget aside (1 = no slowdown). */
  relativeTime: number;
  /** The smallest whole step any plan needs at this batch (every block in the leanest mode). */
  smallestWholeStepBytes: number;
  /**
   * What the backend holds at most for the step, the number compared with the budget: wholeStepBytes, or on a
   * backend holding more than its tensors (webgpu) wholeStepBytes × backendPeakFactor, rounded up.
   */
  backendPeakBytes: number;
  /** That multiple (1 where the budget counts tensors). */
  backendPeakFactor: number;
  /** The meta backend that measured the bytes, and the backend whose costs ranked the plans. */
  metaBackend: string;
  costBackend: string;
}

const formatMiB = (bytes: number): string => formatMiBOf(bytes, { round: 'up' });

/** The cost model's view of each dense block at a square image size. */
export function blockShapes(model: tf.LayersModel, imageSize: number): BlockShape[] {
  const parts = partsOf(model);
  const afterConv = Math.floor((imageSize + 6 - 7) / 2) + 1;
  let size = Math.floor((afterConv + 2 - 3) / 2) + 1;
  return parts.blocks.map((block, i) => {
    const inputChannels = (block.input as tf.SymbolicTensor).shape[3] as number;
    const shape: BlockShape = {
      pixels: size * size,
      inputChannels,
      numLayers: block.numLayers,
      growthRate: block.growthRate,
      bnSize: block.bnSize,
      transitionChannels: parts.transitions[i]?.outputChannels,
      stemMacs: i === 0 && parts.stem ? stemMacs(imageSize, parts.stem.filters) : undefined,
    };
    size = Math.floor(size / 2);
    return shape;
  });
}

/** Runs `fn` with a meta backend active, then returns to the backend that was active (also parallel/admission.ts). */
export async function onMeta<T>(meta: BackendTraits['plannedOn'], fn: () => Promise<T>): Promise<T> {
  const previous = tf.getBackend();
  await initBackend(meta);
  try {
    return await fn();
  } finally {
    if (previous && previous !== tf.getBackend()) await tf.setBackend(previous);
  }
}

function allPlans(blocks: number): MemoryMode[][] {
  let plans: MemoryMode[][] = [[]];
  for (let b = 0; b < blocks; b++) plans = plans.flatMap((plan) => MEMORY_MODES.map((mode) => [...plan, mode]));
  return plans;
}

/** How many candidate plans are measured before settling for every block in the leanest mode. */
const MAX_VERIFICATIONS = 6;

export async function planMemory(options: PlanMemoryOptions): Promise<MemoryPlan> {
  const { model } = options;
  if (!(model instanceof tf.LayersModel)) throw new UsageError('planMemory: model must be a tf.LayersModel');
  const logger = options.logger ?? silentLogger;
  const budgetBytes = byteSize('planMemory: budget', options.budget) as number;
  const batchSize = integer('planMemory: batchSize', options.batchSize ?? null) as number;
  const imageSize = integer('planMemory: imageSize', options.imageSize ?? inputImageSize(model) ?? undefined);
  if (imageSize === undefined) throw new UsageError('planMemory: imageSize must be given for a model with a variable input size');
  const numClasses = options.numClasses ?? (model.outputs[0].shape[1] as number);
  const blockCount = partsOf(model, 'planMemory').blocks.length;
  const live = tf.getBackend();
  const costBackend = options.costBackend ?? live;
  const metaBackend = backendTraits(live).plannedOn;
  const factors = costFactorsFor(costBackend);
  const peakFactor = backendTraits(costBackend).backendPeakFactor ?? 1;
  // What the backend holds for a whole step of `bytes` tensor bytes: the number the budget bounds.
  const held = (bytes: number) => Math.ceil(bytes * peakFactor);
  const onBackend = peakFactor === 1 ? '' : ` (× ${peakFactor}: what ${costBackend} holds beyond its tensors)`;
  const shapes = blockShapes(model, imageSize);
  const cost = shapes.map((shape) => Object.fromEntries(MEMORY_MODES.map((m) => [m, blockCost(shape, m, factors)])) as Record<MemoryMode, number>);
  const planCost = (plan: MemoryMode[]) => plan.reduce((sum, mode, b) => sum + cost[b][mode], 0);
  const fastest = cost.reduce((sum, c) => sum + Math.min(...MEMORY_MODES.map((m) => c[m])), 0);
  const topology = model.toJSON(null, false) as tf.io.ModelJSON['modelTopology'];

  const result = await onMeta(metaBackend, async () => {
    const shadow = await tf.models.modelFromJSON({ modelTopology: topology } as tf.io.ModelJSON);
    const measure = async (plan: MemoryMode[]) => {
      setMemoryMode(shadow, plan);
      const m = await measureTrainingStep({ model: shadow, batchSize, imageSize, numClasses, optimizer: options.optimizer, seed: 1 });
      return { wholeStep: m.peakBytes, baseline: m.baselineBytes, stepPeak: m.stepPeakBytes };
    };
    try {
      const leanest = new Array<MemoryMode>(blockCount).fill(LEANEST_MODE);
      const base = await measure(leanest);
      if (held(base.wholeStep) > budgetBytes) {
        throw new UsageError(
          `memory budget ${formatSize(budgetBytes)} is too small for batch ${batchSize} at ${imageSize}²: the smallest whole step any plan ` +
            `needs is ${formatMiB(held(base.wholeStep))}${onBackend} (every dense block in ${LEANEST_MODE} mode); give at least that, or a smaller batch`,
        );
      }
      // Each block alone in each other mode: its difference to the leanest plan. A mode that costs no less
      // than a leaner one (MEMORY_MODES is ordered by memory) can never be chosen and is not measured.
      const delta: Array<Record<MemoryMode, number>> = [];
      for (let b = 0; b < blockCount; b++) {
        const row = { [LEANEST_MODE]: 0 } as Record<MemoryMode, number>;
        const useful = MEMORY_MODES.filter((m, i) => m !== LEANEST_MODE && MEMORY_MODES.slice(i + 1).every((leaner) => cost[b][leaner] > cost[b][m]));
        for (const mode of MEMORY_MODES.filter((m) => m !== LEANEST_MODE)) row[mode] = Infinity;
        for (const mode of useful) {
          const plan = leanest.slice();
          plan[b] = mode;
          row[mode] = (await measure(plan)).wholeStep - base.wholeStep;
        }
        delta.push(row);
      }
      const candidates = allPlans(blockCount)
        .map((plan) => ({ plan, cost: planCost(plan), predicted: base.wholeStep + plan.reduce((sum, mode, b) => sum + delta[b][mode], 0) }))
        .filter((c) => held(c.predicted) <= budgetBytes)
        .sort((a, b) => a.cost - b.cost);
      for (const candidate of candidates.slice(0, MAX_VERIFICATIONS)) {
        if (candidate.plan.every((m) => m === LEANEST_MODE)) return { plan: candidate.plan, measured: base, smallest: base.wholeStep };
        const measured = await measure(candidate.plan);
        if (held(measured.wholeStep) <= budgetBytes) return { plan: candidate.plan, measured, smallest: base.wholeStep };
        logger.info(`memory plan ${candidate.plan.join('/')}: predicted ${formatMiB(held(candidate.predicted))}, measured ${formatMiB(held(measured.wholeStep))}${onBackend}: over budget`);
      }
      return { plan: leanest, measured: base, smallest: base.wholeStep };
    } finally {
      shadow.dispose();
    }
  });

  const blocks = partsOf(model).blocks.map((block, b) => ({
    name: block.name,
    mode: result.plan[b],
    relativeTime: cost[b][result.plan[b]] / Math.min(...MEMORY_MODES.map((m) => cost[b][m])),
  }));
  if (options.apply ?? true) setMemoryMode(model, result.plan);
  return {
    modes: result.plan,
    blocks,
    budgetBytes,
    wholeStepBytes: result.measured.wholeStep,
    baselineBytes: result.measured.baseline,
    stepPeakBytes: result.measured.stepPeak,
    relativeTime: planCost(result.plan) / fastest,
    smallestWholeStepBytes: result.smallest,
    backendPeakBytes: held(result.measured.wholeStep),
    backendPeakFactor: peakFactor,
    metaBackend,
    costBackend,
  };
}

export interface ApplyMemoryBudgetOptions {
  batchSize: number;
  imageSize?: number;
  budget: number | string;
  numClasses?: number;
  optimizer?: OptimizerSettings;
  logger?: Logger;
}

/** planMemory applied to a model, with the plan logged: what `trainDenseNet({ memoryBudget })` calls. */
export async function applyMemoryBudget(model: tf.LayersModel, options: ApplyMemoryBudgetOptions): Promise<MemoryPlan> {
  const plan = await planMemory({ ...options, model, apply: true });
  (options.logger ?? silentLogger).info(describePlan(plan));
  return plan;
}

/** One line: the modes per block, the whole step against the budget, the predicted relative time. */
export function describePlan(plan: MemoryPlan): string {
  const modes = plan.blocks.map((b) => `${b.name} ${b.mode}`).join(', ');
  return (
    `memory plan: ${modes}; whole step ${formatMiB(plan.wholeStepBytes)}` +
    (plan.backendPeakFactor === 1 ? '' : `, ${plan.costBackend} holds ≤ ${formatMiB(plan.backendPeakBytes)} (× ${plan.backendPeakFactor})`) +
    ` of ${formatSize(plan.budgetBytes)} (measured on ${plan.metaBackend}); predicted time ${plan.relativeTime.toFixed(2)}× the fastest plan on ${plan.costBackend}`
  );
}
