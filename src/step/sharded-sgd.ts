/**
 * SGD with momentum (Nesterov or not) and coupled weight decay over one contiguous share of a flat parameter
 * vector: the optimizer half of a data-parallel step, sharded as ZeRO stage 1 and PyTorch's
 * ZeroRedundancyOptimizer shard it. After the gradient sum is scattered, each worker updates only its share of
 * the weights (and keeps only that share's momentum), and the new weights are gathered; every worker no
 * longer runs the whole update, a tfjs op per variable and term, on every parameter.
 *
 * Bit for bit TrainingOptimizer (tfjs's MomentumOptimizer after TrainingOptimizer.apply's weight decay) given
 * the same summed gradient: the workers' parts are added in rank order in float64 and rounded once, as the
 * workers' reduce-scatter (parallel/shared-group.ts) sums them, then each float32 op of that path is one
 * Math.fround here, in its order —
 *   g ← g + w·wd;  a ← m·a + g;  w ← w + (−lr)·(g + a·m)   (Nesterov; plain: w ← w + (−lr)·a)
 * — with the constants rounded to float32 as tfjs's scalars round them; test/sharded-sgd.test.ts compares the
 * two on cpu and wasm. Adam keeps the tfjs path.
 */
import * as tf from '@tensorflow/tfjs';
import { sgdTwoKernel, type SgdTwoKernel } from '../backend/sgd-kernel.js';
import type { NamedTensor, OptimizerSettings } from './optimizers.js';

type GroupName = 'classifier' | 'features';

/** A flat vector's variables: where each starts, its size and its parameter group. */
export interface FlatLayout {
  offsets: number[];
  sizes: number[];
  groups: GroupName[];
}

/** The layout of `variables` laid end to end, `classifier` holding the classifier group's indices. */
export function flatLayout(variables: tf.Variable[], classifier: ReadonlySet<number>): FlatLayout & { total: number } {
  const offsets: number[] = [];
  let total = 0;
  for (const v of variables) {
    offsets.push(total);
    total += v.size;
  }
  return { offsets, sizes: variables.map((v) => v.size), groups: variables.map((_, i) => (classifier.has(i) ? 'classifier' : 'features')), total };
}

export class ShardedSgd {
  /** This share's momentum, element j at momentum[j − start]. */
  private readonly momentum: Float32Array;
  /**
   * Per group, the variables with an accumulator (tfjs creates one, zero, at a variable's first update), in
   * the order tfjs keeps them.
   */
  private readonly started: Record<GroupName, number[]> = { classifier: [], features: [] };
  private readonly isStarted: boolean[];
  /** applyGradients calls per group (tfjs's `iter`): one per step in which the group had a gradient. */
  private readonly iterations: Record<GroupName, number> = { classifier: 0, features: 0 };
  private lr: number;

  static supports(settings: OptimizerSettings): boolean {
    return settings.name === 'sgd';
  }

  constructor(
    private readonly settings: OptimizerSettings & { featuresLrScale: number },
    private readonly layout: FlatLayout,
    /** This worker's share of the flat vector: elements [start, end). */
    readonly start: number,
    readonly end: number,
  ) {
    if (!ShardedSgd.supports(settings)) throw new Error(`ShardedSgd: optimizer '${settings.name}' is not SGD`);
    this.momentum = new Float32Array(Math.max(0, end - start));
    this.isStarted = layout.sizes.map(() => false);
    this.lr = settings.lr;
  }

  setLearningRate(lr: number): void {
    this.lr = lr;
  }

  /**
   * One step: `applied[i]` says whether variable i is updated (it has a gradient and is trained). For each
   * applied variable's elements j in this share, the gradient is the sum of `parts[r][j]` over the parts in
   * order, in float64, rounded once (the workers' partial gradients; one part is the gradient itself), and
   * `out[j]` receives the new weight; `weights(i)` gives variable i's current values. Elements of variables
   * not applied are left alone.
   */
  update(parts: readonly Float32Array[], out: Float32Array, applied: readonly boolean[], weights: (i: number) => Float32Array): void {
    const { offsets, sizes, groups } = this.layout;
    const stepped = { classifier: false, features: false };
    // Two workers on wasm: a SIMD loop on the heap (backend/wasm/sgd), else the JavaScript one below.
    const kernel = parts.length === 2 ? sgdTwoKernel() : null;
    for (let i = 0; i < sizes.length; i++) {
      if (!applied[i]) continue;
      const group = groups[i]!;
      stepped[group] = true;
      if (!this.isStarted[i]) {
        this.isStarted[i] = true;
        this.started[group].push(i);
      }
      const from = Math.max(this.start, offsets[i]!);
      const to = Math.min(this.end, offsets[i]! + sizes[i]!);
      if (from >= to) continue;
      const lr = group === 'features' ? this.lr * this.settings.featuresLrScale : this.lr;
      const w = weights(i).subarray(from - offsets[i]!, to - offsets[i]!);
      const a = this.momentum.subarray(from - this.start, to - this.start);
      if (parts.length === 2) this.updateTwo(parts[0]!.subarray(from, to), parts[1]!.subarray(from, to), w, a, out.subarray(from, to), lr, kernel);
      else this.updateMany(parts.map((p) => p.subarray(from, to)), w, a, out.subarray(from, to), lr);
    }
    for (const group of ['classifier', 'features'] as const) if (stepped[group]) this.iterations[group]++;
  }

  /** update's inner loop for two parts (two workers): the branches hoisted out of the loop. */
  private updateTwo(p0: Float32Array, p1: Float32Array, w: Float32Array, a: Float32Array, out: Float32Array, lr: number, kernel: SgdTwoKernel | null): void {
    const f = Math.fround;
    const constants = this.constants(lr);
    if (kernel?.(p0, p1, w, a, out, constants)) return;
    const { m, wd, c, nesterov, decay } = constants;
    const n = w.length;
    if (nesterov && decay) {
      for (let j = 0; j < n; j++) {
        const wj = w[j]!;
        const g = f(f(0 + p0[j]! + p1[j]!) + f(wj * wd));
        const acc = f(f(m * a[j]!) + g);
        a[j] = acc;
        out[j] = f(f(c * f(g + f(acc * m))) + wj);
      }
    } else if (nesterov) {
      for (let j = 0; j < n; j++) {
        const g = f(0 + p0[j]! + p1[j]!);
        const acc = f(f(m * a[j]!) + g);
        a[j] = acc;
        out[j] = f(f(c * f(g + f(acc * m))) + w[j]!);
      }
    } else if (decay) {
      for (let j = 0; j < n; j++) {
        const wj = w[j]!;
        const acc = f(f(m * a[j]!) + f(f(0 + p0[j]! + p1[j]!) + f(wj * wd)));
        a[j] = acc;
        out[j] = f(f(c * acc) + wj);
      }
    } else {
      for (let j = 0; j < n; j++) {
        const acc = f(f(m * a[j]!) + f(0 + p0[j]! + p1[j]!));
        a[j] = acc;
        out[j] = f(f(c * acc) + w[j]!);
      }
    }
  }

  /** update's inner loop for any number of parts. */
  private updateMany(parts: Float32Array[], w: Float32Array, a: Float32Array, out: Float32Array, lr: number): void {
    const f = Math.fround;
    const { m, wd, c, nesterov, decay } = this.constants(lr);
    for (let j = 0; j < w.length; j++) {
      let sum = 0;
      for (const p of parts) sum += p[j]!;
      const wj = w[j]!;
      const g = decay ? f(f(sum) + f(wj * wd)) : f(sum);
      const acc = f(f(m * a[j]!) + g);
      a[j] = acc;
      out[j] = nesterov ? f(f(c * f(g + f(acc * m))) + wj) : f(f(c * acc) + wj);
    }
  }

  /** The update's constants as tfjs's float32 scalars hold them. */
  private constants(lr: number): { m: number; wd: number; c: number; nesterov: boolean; decay: boolean } {
    const f = Math.fround;
    const { momentum, weightDecay, nesterov } = this.settings;
    // TrainingOptimizer adds the decay term only where weightDecay > 0.
    return { m: f(momentum), wd: f(weightDecay), c: f(-lr), nesterov: nesterov ?? true, decay: weightDecay > 0 };
  }

  /** Writes this share's momentum into a flat vector (indexed like the weights). */
  writeMomentum(into: Float32Array): void {
    into.set(this.momentum, this.start);
  }

  /**
   * The optimizer state in TrainingOptimizer.getState's names and order — per group `group:iter` (always, as
   * tfjs saves it), then
   * `group:<variable>/momentum` in first-update order — from the whole momentum vector (every share's
   * writeMomentum). The tensors are the caller's.
   */
  state(momentum: Float32Array, variables: tf.Variable[]): NamedTensor[] {
    const state: NamedTensor[] = [];
    for (const group of ['classifier', 'features'] as const) {
      state.push({ name: `${group}:iter`, tensor: tf.scalar(this.iterations[group], 'int32') });
      for (const i of this.started[group]) {
        const v = variables[i]!;
        const at = this.layout.offsets[i]!;
        state.push({ name: `${group}:${v.name}/momentum`, tensor: tf.tensor(momentum.slice(at, at + v.size), v.shape, 'float32') });
      }
    }
    return state;
  }

  /**
   * Restores state as TrainingOptimizer.setState takes it (getState's or state()'s); keeps this share. As in
   * tfjs, accumulators are matched to variables by position — a group's k-th `…/momentum` is its k-th
   * variable — not by name: a snapshot's variable names are those of the process that wrote it.
   */
  setState(state: NamedTensor[], variables: tf.Variable[]): void {
    for (const group of ['classifier', 'features'] as const) {
      this.started[group].length = 0;
      this.iterations[group] = 0;
    }
    this.isStarted.fill(false);
    this.momentum.fill(0);
    const members = { classifier: [] as number[], features: [] as number[] };
    this.layout.groups.forEach((group, i) => members[group].push(i));
    for (const { name, tensor } of state) {
      const colon = name.indexOf(':');
      const group = name.slice(0, colon) as GroupName;
      const rest = name.slice(colon + 1);
      if (!(group in members)) throw new Error(`ShardedSgd: optimizer state '${name}' names no parameter group (classifier or features)`);
      if (rest === 'iter') {
        this.iterations[group] = tensor.dataSync()[0]!;
        continue;
      }
      if (!rest.endsWith('/momentum')) throw new Error(`ShardedSgd: unexpected optimizer state '${name}' (SGD keeps 'iter' and '<variable>/momentum')`);
      const i = members[group][this.started[group].length];
      if (i === undefined || variables[i]!.size !== tensor.size) {
        throw new Error(`ShardedSgd: optimizer state '${name}' (${tensor.size} values) does not fit the ${group} group's variable ${this.started[group].length} (${i === undefined ? 'none' : `${variables[i]!.size} values`})`);
      }
      this.isStarted[i] = true;
      this.started[group].push(i);
      const at = this.layout.offsets[i]!;
      const from = Math.max(this.start, at);
      const to = Math.min(this.end, at + this.layout.sizes[i]!);
      if (from < to) this.momentum.set((tensor.dataSync() as Float32Array).subarray(from - at, to - at), from - this.start);
    }
  }
}
