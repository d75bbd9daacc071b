/**
 * The time side of memory planning: a cost model, never a timing (a timing taken while planning would measure
 * whatever else the machine is doing). The cost of dense block b in mode m is
 *   t(b, m) = trainingFlops(b) · factor[backend][m] · (1 + recomputedFlops(b, m) / trainingFlops(b))
 * where trainingFlops is 3× the forward convolutions of the block (with the transition after it, and the stem
 * for block 1), recomputedFlops counts the convolutions a mode runs twice (where the mode table's strategies
 * recompute a block's 1×1 convolutions or the stem's convolution), and factor is the measured cost of a mode's
 * elementwise passes and kernels on a kind of processor, relative to the default recomputing mode (1): the
 * mode table's `cost`, chosen by the backend's `costClass` trait. `scripts/measure-mode-costs.ts`
 * measures the factors on a quiet machine.
 */
import { STEM_CONV } from '../layers/stem.js';
import { backendTraits } from '../backend/traits.js';
import { MEMORY_MODE_TABLE, memoryModeSpec, type MemoryMode } from '../layers/memory-modes.js';

/** Each mode's cost factor on a backend: the mode table's, for the backend's kind of processor (its trait). */
export function costFactorsFor(backend: string): Record<MemoryMode, number> {
  const costClass = backendTraits(backend).costClass;
  return Object.fromEntries(MEMORY_MODE_TABLE.map((m) => [m.name, m.cost[costClass]])) as Record<MemoryMode, number>;
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
  const { stages } = memoryModeSpec(mode);
  const recomputedMacs = (stages.denseBlock === 'keep-output' ? bottleneckMacs : 0) + (stages.stem === 'recompute-conv' ? (block.stemMacs ?? 0) : 0);
  return { training: 6 * macs, recomputed: 2 * recomputedMacs };
}

/** Predicted cost of a block in a mode on a backend (arbitrary units: only ratios are meaningful). */
export function blockCost(block: BlockShape, mode: MemoryMode, factors: Record<MemoryMode, number>): number {
  const { training, recomputed } = blockFlops(block, mode);
  return training * factors[mode] * (1 + recomputed / training);
}
