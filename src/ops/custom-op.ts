/**
 * A typed face for `tf.customGrad` over a list of tensors. Everything the forward computes is tidied away
 * except its value and what it hands to `save`; `save` keeps clones that share storage with the originals,
 * so saving a tensor that exists anyway costs no memory.
 */
import * as tf from '@tensorflow/tfjs';

export type SaveFn = (tensors: tf.Tensor[]) => void;

export interface CustomOpResult<T extends tf.Tensor> {
  value: T;
  /** Returns one gradient per input, in input order. Receives what the forward saved. */
  gradFunc: (dy: T, saved: tf.Tensor[]) => tf.Tensor[];
}

export function customOp<T extends tf.Tensor>(
  forward: (inputs: tf.Tensor[], save: SaveFn) => CustomOpResult<T>,
): (inputs: tf.Tensor[]) => T {
  const op = tf.customGrad(((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args.pop() as tf.GradSaveFunc;
    const { value, gradFunc } = forward(args as tf.Tensor[], save);
    return { value, gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => gradFunc(dy as T, saved) };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (inputs) => op(...inputs) as T;
}

/**
 * Frees what a recomputing backward has finished with. The engine disposes saved tensors again when the whole
 * backward ends; a second dispose is a no-op, and freeing early is what keeps the backward's peak low.
 */
export function release(...tensors: Array<tf.Tensor | undefined>): void {
  for (const tensor of tensors) tensor?.dispose();
}
