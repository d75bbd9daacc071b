/** The memory modes as the benchmarks and the CLI name them, and what each means for the model. */
import type { MemoryMode, RecomputeMode } from '../layers/config.js';

export const BENCH_MODES = ['naive', 'bottleneck', 'efficient', 'block'] as const;
export type BenchMode = (typeof BENCH_MODES)[number];

/** CLI groups: `both` = naive + efficient, `all` = every mode (`auto`, where offered, is a per-block plan). */
export const MODE_GROUPS: Record<string, BenchMode[]> = {
  naive: ['naive'],
  bottleneck: ['bottleneck'],
  efficient: ['efficient'],
  block: ['block'],
  both: ['naive', 'efficient'],
  all: ['naive', 'bottleneck', 'efficient', 'block'],
};

export function modelOptionsFor(mode: BenchMode): { memoryEfficient: boolean; recompute: RecomputeMode } {
  switch (mode) {
    case 'naive':
      return { memoryEfficient: false, recompute: 'layer' };
    case 'bottleneck':
      return { memoryEfficient: true, recompute: 'bottleneck' };
    case 'efficient':
      return { memoryEfficient: true, recompute: 'layer' };
    case 'block':
      return { memoryEfficient: true, recompute: 'block' };
  }
}

export function benchModeOf(mode: MemoryMode): BenchMode {
  return mode === 'layer' ? 'efficient' : mode;
}
