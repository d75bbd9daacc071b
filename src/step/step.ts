/**
 * One training step of a classifier that outputs logits — training-mode forward, softmax cross-entropy,
 * backward, weight decay, optimizer update — through `TrainingOptimizer` (optimizers.ts). It is the only step:
 * `trainDenseNet` runs it (in this thread, or split in its two halves, `lossGradients` and `apply`, over
 * data-parallel workers that sum their gradients between them), `measureTrainingStep` measures it, and every
 * benchmark row times it, whatever the worker count.
 */
import * as tf from '@tensorflow/tfjs';
import { UsageError } from '../util/errors.js';
import { TrainingOptimizer, type OptimizerSettings, type ParamGroups, type StepOutput } from './optimizers.js';

/** The trainable variables of a model or layer (only those: the engine's global list includes other models'). */
export function trainableVariables(owner: { trainableWeights: tf.LayerVariable[] }): tf.Variable[] {
  return owner.trainableWeights.map((weight) => weight.read() as tf.Variable);
}

/** A model's classifier: its last layer, which must be Dense (what training and fine-tuning replace and group apart). */
export function classifierOf(model: tf.LayersModel): tf.layers.Layer {
  const last = model.layers[model.layers.length - 1];
  if (!last || last.getClassName() !== 'Dense') {
    throw new UsageError(`model '${model.name}' must end in a Dense classifier layer to be trained here; its last layer is ${last?.getClassName() ?? 'missing'}`);
  }
  return last;
}

/** The two parameter groups of a model: the classifier's variables and every other trainable one (the features). */
export function paramGroups(model: tf.LayersModel): ParamGroups {
  const classifier = trainableVariables(classifierOf(model));
  return { features: trainableVariables(model).filter((v) => !classifier.includes(v)), classifier };
}

/** Where the classifier's variables sit in the model's trainable variables (how workers find the groups of their replicas). */
export function classifierIndices(model: tf.LayersModel): number[] {
  const variables = trainableVariables(model);
  return paramGroups(model).classifier.map((v) => variables.indexOf(v));
}

/**
 * The optimizer the measurements and benchmarks use unless told otherwise: SGD with Nesterov momentum 0.9 (the
 * trainer's SGD) at learning rate 0.01, no weight decay — one state tensor per weight.
 */
export const MEASURING_OPTIMIZER: OptimizerSettings = { name: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 0 };

/** Describes an optimizer's settings in one phrase, for reports: "SGD (Nesterov momentum 0.9)". */
export function describeOptimizer(settings: OptimizerSettings): string {
  return settings.name === 'sgd' ? `SGD (${settings.nesterov === false ? '' : 'Nesterov '}momentum ${settings.momentum})` : 'Adam';
}

/** Runs one step of `model` on a batch; the caller owns the returned loss and correct count. */
export function trainingStep(model: tf.LayersModel, optimizer: TrainingOptimizer, xs: tf.Tensor, ys: tf.Tensor, groups: ParamGroups = paramGroups(model)): StepOutput {
  return optimizer.step(() => model.apply(xs, { training: true }) as tf.Tensor, ys, groups);
}

export { TrainingOptimizer };
