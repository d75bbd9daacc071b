/**
 * The time side of memory planning: a cost model, never a timing (a timing taken while planning would measure
 * whatever else the machine is doing). The cost of dense block b in mode m is
 *   t(b, m) = trainingFlops(b) · factor[backend][m] · (1 + recomputedFlops(b, m) / trainingFlops(b))
 * where trainingFlops is 3× the forward convolutions of the block (with the transition after it, and the stem
 * for block 1), recomputedFlops counts the convolutions a mode runs twice ('block': every 1×1 bottleneck
 * convolution, and the stem's 7×7 convolution for block 1), and factor is the measured cost of a mode's
 * elementwise passes and kernels on a backend relative to 'layer' (1). `scripts/measure-mode-costs.ts`
 * measures the factors on a quiet machine.
 */
import { STEM_CONV } from '../layers/stem.js';
import type { MemoryMode } from '../layers/config.js';

/**
 * Whole-step time of each mode relative to 'layer', per backend (before the recomputed FLOPs, which the model
 * adds). wasm: measured on a quiet 2-core machine, DenseNet-121, 112², batch 8, one process per mode
 * (`bench --backend wasm --steps 3 --mode all`, 2026-11-30: naive 1,986, bottleneck 2,155, layer 1,976,
 * block 2,372 ms/step). cpu: not measured, taken as wasm's. tensorflow: not measured (no native TensorFlow
 * here) — GPU kernels make elementwise passes cheap, so naive is assumed fastest; calibrate with the script.
 */
export const MODE_COST_FACTORS: Record<string, Record<MemoryMode, number>> = {
  wasm: { naive: 1.005, bottleneck: 1.091, layer: 1, block: 1.032 },
  cpu: { naive: 1.005, bottleneck: 1.091, layer: 1, block: 1.032 },
  tensorflow: { naive: 0.8, bottleneck: 0.9, layer: 1, block: 1 },
};

/** The factors for a backend; the meta backends plan for what they mirror. */
export function costFactorsFor(backend: string): Record<MemoryMode, number> {
  const name = backend === 'meta' ? 'cpu' : backend === 'meta-wasm' ? 'wasm' : backend;
  return MODE_COST_FACTORS[name] ?? MODE_COST_FACTORS['tensorflow'];
}

/** What the cost model needs to know about one dense block. */
export interface BlockShape {
  /** Spatial size of the block (height × width). */
  pixels: number;
  inputChannels: number;
  numLayers: number;
  growthRate: number;
  bnSize: number;
  /** Output channels of the transition after the block; undefined for the last block. */
  transitionChannels?: number;
  /** Forward MACs of the stem convolution per image (block 1 only). */
  stemMacs?: number;
}

/** Forward MACs per image of the stem's 7×7 convolution at a square image size. */
export function stemMacs(imageSize: number, filters: number): number {
  const size = Math.floor((imageSize + 2 * STEM_CONV.pad - STEM_CONV.size) / STEM_CONV.stride) + 1;
  return size * size * STEM_CONV.size * STEM_CONV.size * 3 * filters;
}

/** Training FLOPs (3× forward) and the FLOPs a mode recomputes, per image. */
export function blockFlops(block: BlockShape, mode: MemoryMode): { training: number; recomputed: number } {
  const width = block.bnSize * block.growthRate;
  let macs = 0;
  let bottleneckMacs = 0;
  let channels = block.inputChannels;
  for (let l = 0; l < block.numLayers; l++) {
    bottleneckMacs += block.pixels * channels * width;
    macs += block.pixels * (channels * width + 9 * width * block.growthRate);
    channels += block.growthRate;
  }
  if (block.transitionChannels !== undefined) macs += (block.pixels / 4) * channels * block.transitionChannels;
  macs += block.stemMacs ?? 0;
  const recomputedMacs = mode === 'block' ? bottleneckMacs + (block.stemMacs ?? 0) : 0;
  return { training: 6 * macs, recomputed: 2 * recomputedMacs };
}

/** Predicted cost of a block in a mode on a backend (arbitrary units: only ratios are meaningful). */
export function blockCost(block: BlockShape, mode: MemoryMode, factors: Record<MemoryMode, number>): number {
  const { training, recomputed } = blockFlops(block, mode);
  return training * factors[mode] * (1 + recomputed / training);
}
