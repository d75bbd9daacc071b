/**
 * `checkpoint(fn)`, tfjs's counterpart of `torch.utils.checkpoint`: the wrapped function's intermediates are
 * not kept for backprop; its forward runs again inside the backward, differentiated by tfjs itself.
 */
import * as tf from '@tensorflow/tfjs';
import { customOp } from '../ops/custom-op.js';

interface TapeState {
  activeTape: unknown;
}

/**
 * Runs `fn` (which calls `tf.grads` or similar) from inside a gradient function. tfjs-core's
 * `engine.gradients` replaces the engine's active tape when it starts at depth 0 and sets it to null when it
 * ends, which would leave the enclosing backward without its tape ("reading 'forEach'" of null) and leak the
 * enclosing tape's saved tensors; the enclosing tape is put back afterwards.
 */
function withIsolatedTape<T>(fn: () => T): T {
  const state = tf.engine().state as unknown as TapeState;
  const outerTape = state.activeTape;
  try {
    return fn();
  } finally {
    state.activeTape = outerTape;
  }
}

export interface CheckpointOptions {
  /** Shown in errors. */
  name?: string;
}

/**
 * Wraps `fn` so that calling the result with tensors computes `fn(...inputs)` without keeping any of its
 * intermediates; gradients for every input are computed by re-running `fn` during backprop.
 *
 * Every tensor `fn` depends on — variables included — must be passed as an input: anything read from a
 * closure receives no gradient.
 */
export function checkpoint<T extends tf.Tensor>(
  fn: (...inputs: tf.Tensor[]) => T,
  options: CheckpointOptions = {},
): (...inputs: tf.Tensor[]) => T {
  if (typeof fn !== 'function') {
    throw new Error(`checkpoint(fn): fn must be a function of tensors, got ${typeof fn}`);
  }
  const name = options.name ?? (fn.name || 'checkpointed function');
  const op = customOp<T>((inputs, save) => {
    const value = fn(...inputs);
    if (!(value instanceof tf.Tensor)) {
      throw new Error(`checkpoint: ${name} must return a single tensor, got ${typeof value}`);
    }
    save(inputs);
    return {
      value,
      gradFunc: (dy, saved) =>
        withIsolatedTape(() => {
          const { value: recomputed, grads } = tf.engine().gradients(() => fn(...saved), saved, dy, true);
          recomputed.dispose();
          return grads.map((grad, i) => grad ?? tf.zerosLike(saved[i]));
        }),
    };
  });
  return (...inputs: tf.Tensor[]) => {
    inputs.forEach((input, i) => {
      if (!(input instanceof tf.Tensor)) {
        throw new Error(`checkpoint: argument ${i} of ${name} must be a tf.Tensor, got ${input === null ? 'null' : typeof input}`);
      }
    });
    return op(inputs);
  };
}
