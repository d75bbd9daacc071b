/** The memory modes as the benchmarks and the CLI name them, and what each means for the model. */
import type { MemoryMode } from '../layers/config.js';

export const BENCH_MODES = ['naive', 'bottleneck', 'efficient'] as const;
export type BenchMode = (typeof BENCH_MODES)[number];

/** CLI groups: `both` = naive + efficient, `all` = every mode. */
export const MODE_GROUPS: Record<string, BenchMode[]> = {
  naive: ['naive'],
  bottleneck: ['bottleneck'],
  efficient: ['efficient'],
  both: ['naive', 'efficient'],
  all: ['naive', 'bottleneck', 'efficient'],
};

export function modelOptionsFor(mode: BenchMode): { memoryEfficient: boolean; recompute: 'layer' | 'bottleneck' } {
  switch (mode) {
    case 'naive':
      return { memoryEfficient: false, recompute: 'layer' };
    case 'bottleneck':
      return { memoryEfficient: true, recompute: 'bottleneck' };
    case 'efficient':
      return { memoryEfficient: true, recompute: 'layer' };
  }
}

export function benchModeOf(mode: MemoryMode): BenchMode {
  return mode === 'layer' ? 'efficient' : mode;
}
