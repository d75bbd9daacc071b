/**
 * The memory modes, one row each: the only place their names, their order, what each keeps and what each
 * costs are written down. Help texts, validation, the benchmarks' mode lists, the planner's "leanest" and the
 * layers' choice of ops all derive from this table (test/architecture.test.ts refuses a mode name written
 * anywhere else in src/).
 *
 * A mode is a choice of strategy for each stage of the network. The layers implement the strategies
 * (`Stem`, `DenseLayer`, `DenseBlock`, `Transition`, `FinalNorm`); a new mode that combines existing strategies is
 * one row here. README, "Adding a memory mode", walks through one that needs a new op.
 */

/**
 * How each stage trains. `stored`: tfjs's differentiable ops, every intermediate kept by the tape.
 * `recompute`: one custom-gradient op keeps the stage's input and per-channel statistics and recomputes
 * BN → ReLU in backprop. The others are named where they differ.
 */
export interface StageStrategies {
  /** 7×7 conv → BN → ReLU → max-pool; `recompute-conv` also recomputes the convolution from the network input. */
  stem: 'stored' | 'recompute' | 'recompute-conv';
  /**
   * A dense layer run on its own (a block runs its layers through `denseBlock` unless that is `per-layer`):
   * `recompute-bottleneck` is torchvision's concat → BN → ReLU → 1×1 recomputation; `recompute-all` keeps the
   * 1×1 output and the new features only.
   */
  denseLayer: 'stored' | 'recompute-bottleneck' | 'recompute-all';
  /**
   * A dense block: `per-layer` runs each layer's own strategy; `keep-bottlenecks` one op that keeps the block
   * output and each layer's 1×1 output; `keep-output` one op that keeps the block output alone.
   */
  denseBlock: 'per-layer' | 'keep-bottlenecks' | 'keep-output';
  /** BN → ReLU → avg-pool → 1×1 conv; `recompute-grouped` walks the block output a quarter of its channels at a time. */
  transition: 'stored' | 'recompute' | 'recompute-grouped';
  /** Final BN → ReLU → global average pool. */
  head: 'stored' | 'recompute';
}

/**
 * Whole-step time of a mode relative to `layer` (1) on a kind of processor, before the FLOPs it recomputes
 * (memory/cost.ts adds those). Which kind a backend is, is a backend trait (backend/traits.ts).
 * `sequential` (wasm, cpu: one core runs every elementwise pass): measured on a quiet 2-core machine,
 * DenseNet-121, 112², batch 8, one process per mode (`bench --backend wasm --steps 3 --mode all`,
 * 2026-11-30: naive 1,986, bottleneck 2,155, layer 1,976, block 2,372 ms/step).
 * `parallel` (GPUs, native TensorFlow): not measured here (no GPU) — elementwise passes are cheap there, so
 * storing is assumed fastest; `scripts/measure-mode-costs.ts` calibrates both on a quiet machine.
 */
export interface ModeCost {
  sequential: number;
  parallel: number;
}

export interface MemoryModeSpec {
  readonly name: string;
  /** torchvision's setting with the same memory behaviour, or null where torchvision has none. */
  readonly torchvision: string | null;
  /** What the mode keeps for backprop (help texts and README). */
  readonly keeps: string;
  readonly stages: Readonly<StageStrategies>;
  readonly cost: Readonly<ModeCost>;
}

/** Every mode, the leanest first (the planner starts from the first; a later row never keeps less). */
export const MEMORY_MODE_TABLE = [
  {
    name: 'block',
    torchvision: null,
    keeps: "each dense block's output and the network input; the 1×1 outputs and the stem convolution are recomputed too",
    stages: { stem: 'recompute-conv', denseLayer: 'recompute-all', denseBlock: 'keep-output', transition: 'recompute-grouped', head: 'recompute' },
    cost: { sequential: 1.032, parallel: 1 },
  },
  {
    name: 'layer',
    torchvision: null,
    keeps: "each dense layer's 1×1 output and new features; every BN and ReLU output is recomputed",
    stages: { stem: 'recompute', denseLayer: 'recompute-all', denseBlock: 'keep-bottlenecks', transition: 'recompute', head: 'recompute' },
    cost: { sequential: 1, parallel: 1 },
  },
  {
    name: 'bottleneck',
    torchvision: 'memory_efficient=True',
    keeps: "everything but each dense layer's concat → BN → ReLU, which its 1×1 convolution recomputes",
    stages: { stem: 'stored', denseLayer: 'recompute-bottleneck', denseBlock: 'per-layer', transition: 'stored', head: 'stored' },
    cost: { sequential: 1.091, parallel: 0.9 },
  },
  {
    name: 'naive',
    torchvision: 'memory_efficient=False',
    keeps: 'every intermediate (memory quadratic in a block’s depth)',
    stages: { stem: 'stored', denseLayer: 'stored', denseBlock: 'per-layer', transition: 'stored', head: 'stored' },
    cost: { sequential: 1.005, parallel: 0.8 },
  },
] as const satisfies readonly MemoryModeSpec[];

export type MemoryMode = (typeof MEMORY_MODE_TABLE)[number]['name'];

/** Every mode, the baseline (stores everything) first, as benchmarks list them: the table read backwards. */
export const MEMORY_MODES: readonly MemoryMode[] = MEMORY_MODE_TABLE.map((m) => m.name).reverse();
/** The mode that keeps least: what a memory budget falls back to. */
export const LEANEST_MODE: MemoryMode = MEMORY_MODE_TABLE[0].name;
/** The mode that recomputes nothing: torchvision's default. */
export const BASELINE_MODE: MemoryMode = MEMORY_MODE_TABLE[MEMORY_MODE_TABLE.length - 1].name;
/** What `memoryEfficient: true` (and `--memory-efficient`) means: trains as fast as the baseline in a tenth of its memory. */
export const DEFAULT_RECOMPUTING_MODE: MemoryMode = 'layer';

/**
 * Names accepted for a mode besides its own: `efficient`, the name `bench --mode` used before, means what
 * `memoryEfficient: true` means.
 */
export const MEMORY_MODE_ALIASES: Readonly<Record<string, MemoryMode>> = { efficient: DEFAULT_RECOMPUTING_MODE };

export function memoryModeSpec(mode: MemoryMode): MemoryModeSpec {
  return MEMORY_MODE_TABLE.find((m) => m.name === mode)!;
}

/** Whether a mode recomputes anything in backprop (every mode but the baseline). */
export function recomputes(mode: MemoryMode): boolean {
  return mode !== BASELINE_MODE;
}

export function isMemoryMode(value: unknown): value is MemoryMode {
  return typeof value === 'string' && MEMORY_MODE_TABLE.some((m) => m.name === value);
}

/** A mode or an alias → the mode; undefined for anything else. */
export function resolveMemoryModeName(value: string): MemoryMode | undefined {
  return isMemoryMode(value) ? value : MEMORY_MODE_ALIASES[value];
}

/** "naive | bottleneck | layer | block", for help texts and messages. */
export function memoryModeList(separator = ' | '): string {
  return MEMORY_MODES.join(separator);
}

/** Modes a tfjs mode is compared with in PyTorch: torchvision's setting of the same kind. */
export function torchvisionCounterpart(mode: MemoryMode): string {
  const own = memoryModeSpec(mode).torchvision;
  // A mode torchvision lacks recomputes more than memory_efficient=True does: that is its nearest counterpart.
  return own ?? MEMORY_MODE_TABLE.find((m) => m.torchvision !== null && recomputes(m.name))!.torchvision!;
}
