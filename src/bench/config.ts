/**
 * The memory modes the benchmarks and the CLI run (the model's own names, from the mode table), and the CLI's
 * groups of them.
 */
import { BASELINE_MODE, DEFAULT_RECOMPUTING_MODE, MEMORY_MODE_ALIASES, MEMORY_MODES, type MemoryMode } from '../layers/memory-modes.js';

export const BENCH_MODES = MEMORY_MODES;
export type BenchMode = MemoryMode;

/**
 * What `--memory-mode` (alias `--mode`) accepts besides `auto`: a mode, an alias (`efficient`, what
 * `memoryEfficient: true` means), `both` = the baseline and the default recomputing mode, `all` = every mode.
 */
export const MODE_GROUPS: Record<string, readonly BenchMode[]> = {
  ...Object.fromEntries(MEMORY_MODES.map((m) => [m, [m]])),
  ...Object.fromEntries(Object.entries(MEMORY_MODE_ALIASES).map(([alias, m]) => [alias, [m]])),
  both: [BASELINE_MODE, DEFAULT_RECOMPUTING_MODE],
  all: BENCH_MODES,
};

/** The help text's list: "naive | bottleneck | layer | block | both (naive+layer) | all; efficient = layer". */
export function modeGroupsHelp(): string {
  const aliases = Object.entries(MEMORY_MODE_ALIASES).map(([alias, m]) => `${alias} = ${m}`);
  return `${MEMORY_MODES.join(' | ')} | both (${MODE_GROUPS['both']!.join('+')}) | all; ${aliases.join(', ')}`;
}
