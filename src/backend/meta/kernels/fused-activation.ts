/** What the fused kernels (_FusedMatMul, FusedConv2D) do with their activation, per backend. */
import * as tf from '@tensorflow/tfjs';

/** Output of cpu's applyActivation (fused kernels) given the pre-activation shape and dtype. */
export function cpuActivation(shape: number[], dtype: tf.DataType, activation: string | undefined, alpha: tf.TensorInfo | undefined, alphaShape?: number[]): [number[], tf.DataType] {
  if (activation == null) return [shape, dtype];
  switch (activation) {
    case 'linear':
    case 'relu':
    case 'elu':
    case 'relu6':
    case 'sigmoid':
      return [shape, dtype];
    case 'leakyrelu':
      return [shape, 'float32'];
    case 'prelu': {
      if (alpha == null) throw new Error("prelu activation needs 'preluActivationWeights'");
      return [tf.backend_util.assertAndGetBroadcastShape(shape, alphaShape ?? alpha.shape), 'float32'];
    }
    default:
      throw new Error(`Activation ${activation} has not been implemented for the CPU backend.`);
  }
}

/** The activations wasm's fused kernels (XNNPACK) accept. */
export const WASM_FUSABLE: ReadonlySet<string> = new Set(['linear', 'relu', 'relu6', 'prelu', 'leakyrelu', 'sigmoid', 'elu']);
