/** The memory modes the benchmarks and the CLI run (the model's own names), and the CLI's groups of them. */
import { MEMORY_MODES, type MemoryMode } from '../layers/config.js';

export const BENCH_MODES = MEMORY_MODES;
export type BenchMode = MemoryMode;

/**
 * What `--mode` accepts: a mode, `efficient` (what `memoryEfficient: true` means by default, i.e. `layer`;
 * the name earlier versions used), `both` = naive + layer, `all` = every mode (`auto`, where offered, is a
 * per-block plan).
 */
export const MODE_GROUPS: Record<string, readonly BenchMode[]> = {
  naive: ['naive'],
  bottleneck: ['bottleneck'],
  layer: ['layer'],
  block: ['block'],
  efficient: ['layer'],
  both: ['naive', 'layer'],
  all: BENCH_MODES,
};
