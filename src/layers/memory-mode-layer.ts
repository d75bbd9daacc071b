/**
 * What every DenseNet layer of ours shares: a memory mode that can be switched in place (weights untouched)
 * and serialised with the layer, and a way to hand its `addWeight` to weight-group helpers.
 */
import * as tf from '@tensorflow/tfjs';
import { memoryModeFromOptions } from './config.js';
import { BASELINE_MODE, memoryModeSpec, type MemoryMode, type StageStrategies } from './memory-modes.js';
import type { AddWeight } from './norm.js';

export type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;
export type Shape = Array<number | null>;
export type Kwargs = { training?: boolean } & Record<string, unknown>;

export interface MemoryModeArgs {
  /** What backprop keeps and recomputes (memory-modes.ts); default 'naive'. */
  memoryMode?: MemoryMode;
  /** Alias (the older spelling, and what models saved by earlier versions hold): true → 'layer' or `recompute`. */
  memoryEfficient?: boolean;
  /** Alias: the mode `memoryEfficient: true` selects. */
  recompute?: MemoryMode;
  /** Seed for weight initialisation; unseeded when absent. */
  seed?: number;
}

export abstract class MemoryModeLayer extends tf.layers.Layer {
  memoryMode: MemoryMode;
  protected readonly seed?: number;

  constructor(args: LayerArgs & MemoryModeArgs) {
    super(args);
    this.memoryMode = memoryModeFromOptions(args, this.getClassName()) ?? BASELINE_MODE;
    this.seed = args.seed;
  }

  /** Switches the memory strategy; weights and running statistics are untouched. */
  setMemoryMode(mode: MemoryMode): void {
    this.memoryMode = memoryModeFromOptions({ memoryMode: mode }, this.getClassName())!;
  }

  /** How this layer's stage trains in its mode (the mode table's row). */
  protected strategy<S extends keyof StageStrategies>(stage: S): StageStrategies[S] {
    return memoryModeSpec(this.memoryMode).stages[stage];
  }

  protected weightAdder(prefix = ''): AddWeight {
    return (name, shape, initializer, trainable) =>
      this.addWeight(`${prefix}${name}`, shape, 'float32', initializer, undefined, trainable);
  }

  protected static isTraining(kwargs: Kwargs | undefined): boolean {
    return kwargs?.training === true;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), memoryMode: this.memoryMode };
  }
}

export function singleInput(inputs: tf.Tensor | tf.Tensor[], layer: string): tf.Tensor4D {
  const tensor = Array.isArray(inputs) ? inputs[0] : inputs;
  if (Array.isArray(inputs) && inputs.length !== 1) {
    throw new Error(`${layer} takes one input tensor, got ${inputs.length}`);
  }
  if (tensor.rank !== 4) {
    throw new Error(`${layer} expects an NHWC tensor of rank 4, got shape [${tensor.shape}]`);
  }
  return tensor as tf.Tensor4D;
}

export function singleShape(inputShape: Shape | Shape[]): Shape {
  return (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
}
