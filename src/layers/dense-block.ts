/**
 * A dense block: `numLayers` dense layers, each reading the concatenation of the block input and every earlier
 * layer's new features; the output is that whole concatenation (torchvision's `_DenseBlock`).
 * The block owns its DenseLayers' weights, named `<block>/denselayer<i>/...`.
 */
import * as tf from '@tensorflow/tfjs';
import { denseBlockRecomputeOp } from '../recompute/block-op.js';
import { denseBlockOp } from '../recompute/dense-ops.js';
import { validateDropRate } from './config.js';
import type { MemoryMode } from './memory-modes.js';
import { integer } from '../util/validate.js';
import { DenseLayer } from './dense-layer.js';
import { seedFor } from './initializers.js';
import { MemoryModeLayer, singleInput, singleShape, type Kwargs, type LayerArgs, type MemoryModeArgs, type Shape } from './memory-mode-layer.js';

export interface DenseBlockArgs extends LayerArgs, MemoryModeArgs {
  /** Dense layers in the block. */
  numLayers: number;
  /** Feature maps each dense layer adds (k). */
  growthRate: number;
  /** Bottleneck width multiplier (default 4). */
  bnSize?: number;
  /** Dropout rate on each layer's new features during training (default 0). */
  dropRate?: number;
}

export class DenseBlock extends MemoryModeLayer {
  static className = 'DenseBlock';
  readonly numLayers: number;
  readonly growthRate: number;
  readonly bnSize: number;
  readonly dropRate: number;
  readonly denseLayers: DenseLayer[];

  constructor(args: DenseBlockArgs) {
    super(args);
    this.numLayers = integer('DenseBlock: numLayers', args.numLayers ?? NaN) as number;
    this.growthRate = integer('DenseBlock: growthRate', args.growthRate ?? NaN) as number;
    this.bnSize = integer('DenseBlock: bnSize', args.bnSize ?? 4) as number;
    this.dropRate = validateDropRate(args.dropRate ?? 0, 'DenseBlock: dropRate');
    this.denseLayers = Array.from({ length: this.numLayers }, (_, i) =>
      new DenseLayer({
        name: `denselayer${i + 1}`,
        growthRate: this.growthRate,
        bnSize: this.bnSize,
        dropRate: this.dropRate,
        memoryMode: this.memoryMode,
        seed: seedFor(this.seed, i + 1),
        nested: true,
      }),
    );
    for (const layer of this.denseLayers) layer.dropoutKey = `${this.name}/${layer.name}`;
  }

  override build(inputShape: Shape | Shape[]): void {
    const channels = singleShape(inputShape)[3];
    if (typeof channels !== 'number') {
      throw new Error(`DenseBlock '${this.name}': the input channel count must be known, got shape ${JSON.stringify(inputShape)}`);
    }
    this.denseLayers.forEach((layer, i) => layer.buildForChannels(channels + i * this.growthRate));
    this.trainableWeights = this.denseLayers.flatMap((layer) => layer.trainableWeights);
    this.nonTrainableWeights = this.denseLayers.flatMap((layer) => layer.nonTrainableWeights);
    this.built = true;
  }

  override setMemoryMode(mode: MemoryMode): void {
    super.setMemoryMode(mode);
    for (const layer of this.denseLayers) layer.setMemoryMode(this.memoryMode);
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = singleShape(inputShape);
    const channels = shape[3];
    return [...shape.slice(0, 3), channels === null ? null : channels + this.numLayers * this.growthRate];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = singleInput(inputs, `DenseBlock '${this.name}'`);
    const training = MemoryModeLayer.isTraining(kwargs);
    const strategy = this.strategy('denseBlock');
    if (training && strategy !== 'per-layer') {
      const dropout = this.dropRate > 0 ? this.denseLayers.map((layer) => layer.dropout!) : undefined;
      const params = this.denseLayers.map((layer) => layer.trainingParams());
      return strategy === 'keep-output' ? denseBlockRecomputeOp(x, params, dropout) : denseBlockOp(x, params, dropout);
    }
    const features: tf.Tensor4D[] = [x];
    for (const layer of this.denseLayers) features.push(layer.newFeatures(features, training));
    const output = tf.concat(features, 3);
    tf.dispose(features.slice(1));
    return output;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      numLayers: this.numLayers,
      growthRate: this.growthRate,
      bnSize: this.bnSize,
      dropRate: this.dropRate,
    };
  }
}
tf.serialization.registerClass(DenseBlock);
