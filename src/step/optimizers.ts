/**
 * The optimizers `trainDenseNet` offers, with PyTorch's semantics where tfjs differs: coupled weight decay
 * added to the gradient of every parameter before the update (torch.optim.SGD/Adam `weight_decay`), a
 * learning rate that can change between steps, and state that round-trips bit-exactly through a snapshot.
 */
import * as tf from '@tensorflow/tfjs';
import { countCorrect, softmaxCrossEntropy } from './loss.js';

export type OptimizerName = 'sgd' | 'adam';

/** A tensor with the name tfjs optimizers give it in getWeights/setWeights. */
export type NamedTensor = { name: string; tensor: tf.Tensor };

export const OPTIMIZER_NAMES: readonly OptimizerName[] = ['sgd', 'adam'];

export interface OptimizerSettings {
  name: OptimizerName;
  /** Base learning rate (the schedule scales it). */
  lr: number;
  /** Coupled L2 weight decay: grad += weightDecay · w for every trained parameter, before the update. */
  weightDecay: number;
  /** SGD momentum. Ignored by Adam. */
  momentum: number;
  /** SGD with Nesterov momentum (torch.optim.SGD's `nesterov`; default true, the DenseNet paper's recipe). */
  nesterov?: boolean;
}

/** One training step's outputs; the caller owns both scalars. */
export interface StepOutput {
  loss: tf.Scalar;
  /** Correctly classified examples of the batch (argmax of logits = argmax of labels). */
  correct: tf.Scalar;
}

/** Adam's private running powers of β₁ and β₂; tfjs recomputes them with pow() on setWeights, not bit-exactly. */
interface AdamInternals {
  accBeta1?: tf.Variable;
  accBeta2?: tf.Variable;
}

const ADAM_ACC_BETA1 = 'adam/accBeta1';
const ADAM_ACC_BETA2 = 'adam/accBeta2';

/** The two parameter groups of a run: the classifier and the rest (the features), each with its own optimizer. */
export interface ParamGroups {
  features: tf.Variable[];
  classifier: tf.Variable[];
}

const GROUPS = ['classifier', 'features'] as const;

function asGroups(variables: ParamGroups | tf.Variable[]): ParamGroups {
  return Array.isArray(variables) ? { features: [], classifier: variables } : variables;
}

/** A step's outputs before the update: the loss, the correct count and the gradients by variable name. */
export interface LossGradients extends StepOutput {
  grads: tf.NamedTensorMap;
}

/**
 * Forward (via `logitsOf`, inside the gradient tape), softmax cross-entropy times `lossScale`, and its
 * gradients with respect to the groups' variables. A data-parallel replica passes its shard's share of the
 * batch as `lossScale` (shard / batch), so that the replicas' gradients add up to the whole batch's.
 */
export function lossGradients(logitsOf: () => tf.Tensor, ys: tf.Tensor, groups: ParamGroups, lossScale = 1): LossGradients {
  let correct: tf.Scalar | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const logits = logitsOf();
    correct = tf.keep(countCorrect(logits, ys));
    const loss = softmaxCrossEntropy(ys, logits);
    return lossScale === 1 ? loss : tf.mul(loss, lossScale);
  }, [...groups.features, ...groups.classifier]);
  return { loss: value, correct: correct!, grads };
}
type GroupName = (typeof GROUPS)[number];

/**
 * PyTorch's two param groups: one optimizer per group (state per parameter, as in PyTorch, so a group that
 * starts later — features unfrozen after some epochs — starts its own Adam bias correction), the features at
 * `lr · featuresLrScale`. With both groups stepping together and a scale of 1 the updates equal one optimizer's.
 */
export class TrainingOptimizer {
  readonly settings: OptimizerSettings & { featuresLrScale: number };
  private readonly optimizers: Record<GroupName, tf.Optimizer>;
  private currentLr: number;

  constructor(settings: OptimizerSettings & { featuresLrScale?: number }) {
    this.settings = { ...settings, featuresLrScale: settings.featuresLrScale ?? 1 };
    this.currentLr = settings.lr;
    const make = (lr: number): tf.Optimizer =>
      settings.name === 'sgd'
        ? tf.train.momentum(lr, settings.momentum, settings.nesterov ?? true)
        : // β and ε as torch.optim.Adam (tfjs would take ε from the backend, 1e-7 on float32).
          tf.train.adam(lr, 0.9, 0.999, 1e-8);
    this.optimizers = { classifier: make(settings.lr), features: make(settings.lr * this.settings.featuresLrScale) };
  }

  get learningRate(): number {
    return this.currentLr;
  }

  setLearningRate(lr: number): void {
    if (lr === this.currentLr) return;
    this.currentLr = lr;
    for (const group of GROUPS) {
      const groupLr = group === 'features' ? lr * this.settings.featuresLrScale : lr;
      const optimizer = this.optimizers[group];
      // Not `instanceof`: tfjs's Optimizer classes answer it by duck typing, so Adam passes as Momentum.
      if (this.settings.name === 'sgd') {
        (optimizer as tf.MomentumOptimizer).setLearningRate(groupLr);
      } else {
        // AdamOptimizer reads the protected field on every update and has no setter.
        (optimizer as unknown as { learningRate: number }).learningRate = groupLr;
      }
    }
  }

  /**
   * Forward (via `logitsOf`), softmax cross-entropy, backward to the groups' variables, weight decay, update.
   * The logits function runs inside the gradient tape; only the loss is differentiated. `variables` as a
   * plain list is one group (the classifier's optimizer).
   */
  step(logitsOf: () => tf.Tensor, ys: tf.Tensor, variables: ParamGroups | tf.Variable[]): StepOutput {
    const groups = asGroups(variables);
    const { loss, correct, grads } = lossGradients(logitsOf, ys, groups);
    this.apply(grads, groups);
    return { loss, correct };
  }

  /**
   * The update from gradients keyed by variable name (weight decay added here, after any summing of
   * replicas' gradients); the gradients are freed.
   */
  apply(grads: tf.NamedTensorMap, groups: ParamGroups): void {
    const wd = this.settings.weightDecay;
    for (const group of GROUPS) {
      const decayed: tf.NamedTensorMap = {};
      for (const variable of groups[group]) {
        const grad = grads[variable.name];
        if (grad === undefined) continue;
        decayed[variable.name] = wd > 0 ? tf.tidy(() => tf.add(grad, tf.mul(variable, wd))) : grad;
      }
      if (Object.keys(decayed).length > 0) this.optimizers[group].applyGradients(decayed);
      if (wd > 0) tf.dispose(Object.values(decayed));
    }
    tf.dispose(Object.values(grads));
  }

  /** Optimizer state as named tensors (owned by the caller): each group's, Adam's β powers included. */
  async getState(): Promise<NamedTensor[]> {
    const state: NamedTensor[] = [];
    for (const group of GROUPS) {
      const optimizer = this.optimizers[group];
      const weights = await optimizer.getWeights();
      // getWeights hands out the optimizer's own variables (except the iteration scalar); clone them so the
      // caller can dispose what it gets.
      for (const w of weights) state.push({ name: `${group}:${w.name}`, tensor: w.name === 'iter' ? w.tensor : tf.clone(w.tensor) });
      const adam = optimizer as unknown as AdamInternals;
      if (this.settings.name === 'adam' && adam.accBeta1 && adam.accBeta2) {
        state.push({ name: `${group}:${ADAM_ACC_BETA1}`, tensor: tf.clone(adam.accBeta1) }, { name: `${group}:${ADAM_ACC_BETA2}`, tensor: tf.clone(adam.accBeta2) });
      }
    }
    return state;
  }

  /** Restores what getState returned (the tensors stay the caller's). */
  async setState(state: NamedTensor[]): Promise<void> {
    for (const group of GROUPS) {
      const prefix = `${group}:`;
      const mine = state.filter((s) => s.name.startsWith(prefix)).map((s) => ({ name: s.name.slice(prefix.length), tensor: s.tensor }));
      const extra = new Map(mine.filter((s) => s.name.startsWith('adam/')).map((s) => [s.name, s.tensor]));
      const weights = mine.filter((s) => !s.name.startsWith('adam/'));
      if (weights.length === 0 || weights[0]!.name !== 'iter') {
        throw new Error(`optimizer state of the ${group} group must start with the iteration count 'iter'`);
      }
      const optimizer = this.optimizers[group];
      // setWeights turns each tensor into a variable that shares its data; the clones can go afterwards.
      const clones = weights.map((w) => ({ name: w.name, tensor: tf.clone(w.tensor) }));
      await optimizer.setWeights(clones);
      tf.dispose(clones.map((c) => c.tensor));
      const adam = optimizer as unknown as AdamInternals;
      const beta1 = extra.get(ADAM_ACC_BETA1);
      const beta2 = extra.get(ADAM_ACC_BETA2);
      if (this.settings.name === 'adam' && beta1 && beta2 && adam.accBeta1 && adam.accBeta2) {
        adam.accBeta1.assign(beta1 as tf.Scalar);
        adam.accBeta2.assign(beta2 as tf.Scalar);
      }
    }
  }

  dispose(): void {
    for (const group of GROUPS) this.optimizers[group].dispose();
  }
}
