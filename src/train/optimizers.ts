/**
 * The optimizers `trainDenseNet` offers, with PyTorch's semantics where tfjs differs: coupled weight decay
 * added to the gradient of every parameter before the update (torch.optim.SGD/Adam `weight_decay`), a
 * learning rate that can change between steps, and state that round-trips bit-exactly through a snapshot.
 */
import * as tf from '@tensorflow/tfjs';
import { countCorrect, softmaxCrossEntropy } from '../step/loss.js';

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
  /** SGD momentum (Nesterov). Ignored by Adam. */
  momentum: number;
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

export class TrainingOptimizer {
  readonly settings: OptimizerSettings;
  readonly optimizer: tf.Optimizer;
  private currentLr: number;

  constructor(settings: OptimizerSettings) {
    this.settings = { ...settings };
    this.currentLr = settings.lr;
    this.optimizer =
      settings.name === 'sgd'
        ? tf.train.momentum(settings.lr, settings.momentum, true)
        : // β and ε as torch.optim.Adam (tfjs would take ε from the backend, 1e-7 on float32).
          tf.train.adam(settings.lr, 0.9, 0.999, 1e-8);
  }

  get learningRate(): number {
    return this.currentLr;
  }

  setLearningRate(lr: number): void {
    if (lr === this.currentLr) return;
    this.currentLr = lr;
    // Not `instanceof`: tfjs's Optimizer classes answer it by duck typing, so Adam passes as Momentum.
    if (this.settings.name === 'sgd') {
      (this.optimizer as tf.MomentumOptimizer).setLearningRate(lr);
    } else {
      // AdamOptimizer reads the protected field on every update and has no setter.
      (this.optimizer as unknown as { learningRate: number }).learningRate = lr;
    }
  }

  /**
   * Forward (via `logitsOf`), softmax cross-entropy, backward to `variables`, weight decay, update. The
   * logits function runs inside the gradient tape; only the loss is differentiated.
   */
  step(logitsOf: () => tf.Tensor, ys: tf.Tensor, variables: tf.Variable[]): StepOutput {
    let correct: tf.Scalar | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const logits = logitsOf();
      correct = tf.keep(countCorrect(logits, ys));
      return softmaxCrossEntropy(ys, logits);
    }, variables);
    const wd = this.settings.weightDecay;
    const decayed: tf.NamedTensorMap = {};
    for (const variable of variables) {
      const grad = grads[variable.name];
      if (grad === undefined) continue;
      decayed[variable.name] = wd > 0 ? tf.tidy(() => tf.add(grad, tf.mul(variable, wd))) : grad;
    }
    this.optimizer.applyGradients(decayed);
    tf.dispose(Object.values(grads));
    if (wd > 0) tf.dispose(Object.values(decayed));
    return { loss: value, correct: correct! };
  }

  /** Optimizer state as named tensors (owned by the caller), Adam's β powers included. */
  async getState(): Promise<NamedTensor[]> {
    const weights = await this.optimizer.getWeights();
    // getWeights hands out the optimizer's own variables (except the iteration scalar); clone them so the
    // caller can dispose what it gets.
    const state = weights.map((w) => ({ name: w.name, tensor: w.name === 'iter' ? w.tensor : tf.clone(w.tensor) }));
    const adam = this.optimizer as unknown as AdamInternals;
    if (this.settings.name === 'adam' && adam.accBeta1 && adam.accBeta2) {
      state.push({ name: ADAM_ACC_BETA1, tensor: tf.clone(adam.accBeta1) }, { name: ADAM_ACC_BETA2, tensor: tf.clone(adam.accBeta2) });
    }
    return state;
  }

  /** Restores what getState returned (the tensors stay the caller's). */
  async setState(state: NamedTensor[]): Promise<void> {
    const extra = new Map(state.filter((s) => s.name.startsWith('adam/')).map((s) => [s.name, s.tensor]));
    const weights = state.filter((s) => !s.name.startsWith('adam/'));
    if (weights.length === 0 || weights[0]!.name !== 'iter') {
      throw new Error("optimizer state must start with the iteration count 'iter'");
    }
    // setWeights turns each tensor into a variable that shares its data; the clones can go afterwards.
    const clones = weights.map((w) => ({ name: w.name, tensor: tf.clone(w.tensor) }));
    await this.optimizer.setWeights(clones);
    tf.dispose(clones.map((c) => c.tensor));
    const adam = this.optimizer as unknown as AdamInternals;
    const beta1 = extra.get(ADAM_ACC_BETA1);
    const beta2 = extra.get(ADAM_ACC_BETA2);
    if (this.settings.name === 'adam' && beta1 && beta2 && adam.accBeta1 && adam.accBeta2) {
      adam.accBeta1.assign(beta1 as tf.Scalar);
      adam.accBeta2.assign(beta2 as tf.Scalar);
    }
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
