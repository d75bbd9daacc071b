/**
 * What every DenseNet layer of ours shares: a memory mode that can be switched in place (weights untouched)
 * and serialised with the layer, and a way to hand its `addWeight` to weight-group helpers.
 */
import * as tf from '@tensorflow/tfjs';
import { memoryModeOf, validateRecompute, type MemoryMode, type RecomputeMode } from './config.js';
import type { AddWeight } from './norm.js';
import { boolean } from '../util/validate.js';

export type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;
export type Shape = Array<number | null>;
export type Kwargs = { training?: boolean } & Record<string, unknown>;

export interface MemoryModeArgs {
  /** Recompute during backprop instead of storing intermediates (default false). */
  memoryEfficient?: boolean;
  /** What memory-efficient mode recomputes: 'layer' (default), 'block', or torchvision's 'bottleneck'. */
  recompute?: RecomputeMode;
  /** Seed for weight initialisation; unseeded when absent. */
  seed?: number;
}

export abstract class MemoryModeLayer extends tf.layers.Layer {
  memoryEfficient: boolean;
  recompute: RecomputeMode;
  protected readonly seed?: number;

  constructor(args: LayerArgs & MemoryModeArgs) {
    super(args);
    this.memoryEfficient = boolean(`${this.getClassName()}: memoryEfficient`, args.memoryEfficient) ?? false;
    this.recompute = validateRecompute(args.recompute ?? 'layer');
    this.seed = args.seed;
  }

  /** The resolved strategy: 'naive', 'bottleneck', 'layer' or 'block'. */
  get memoryMode(): MemoryMode {
    return memoryModeOf(this.memoryEfficient, this.recompute);
  }

  /** Switches the memory strategy; weights and running statistics are untouched. */
  setMemoryMode(memoryEfficient: boolean, recompute: RecomputeMode = this.recompute): void {
    this.memoryEfficient = memoryEfficient;
    this.recompute = validateRecompute(recompute);
  }

  protected weightAdder(prefix = ''): AddWeight {
    return (name, shape, initializer, trainable) =>
      this.addWeight(`${prefix}${name}`, shape, 'float32', initializer, undefined, trainable);
  }

  protected static isTraining(kwargs: Kwargs | undefined): boolean {
    return kwargs?.training === true;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), memoryEfficient: this.memoryEfficient, recompute: this.recompute };
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
