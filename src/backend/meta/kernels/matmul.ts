/** Matrix products: BatchMatMul and _FusedMatMul. */
import * as tf from '@tensorflow/tfjs';
import { assertNotComplex, fresh, input, withAttrs, type MetaKernelTable } from '../helpers.js';
import { batchMatMulShape } from '../shapes.js';
import { cpuActivation, WASM_FUSABLE } from './fused-activation.js';

export const matMulKernels: MetaKernelTable = {
  [tf.BatchMatMul]: withAttrs<tf.BatchMatMulAttrs>((inputs, { transposeA, transposeB }, b, kernel) => {
    const a = input(inputs, 'a', kernel);
    const bb = input(inputs, 'b', kernel);
    assertNotComplex('matMul', a, bb);
    if (b.traits.checks.has('float32MatMul') && (a.dtype !== 'float32' || bb.dtype !== 'float32')) {
      throw new Error('BatchMatMul for non non-float32 tensors not yet supported.');
    }
    return fresh(b, batchMatMulShape(a, bb, transposeA, transposeB), a.dtype);
  }),

  [tf._FusedMatMul]: withAttrs<tf._FusedMatMulAttrs>((inputs, { transposeA, transposeB, activation }, b, kernel) => {
    const a = input(inputs, 'a', kernel);
    const bb = input(inputs, 'b', kernel);
    const bias = inputs['bias'];
    const alpha = inputs['preluActivationWeights'];
    if (b.traits.checks.has('float32MatMul') && (a.dtype !== 'float32' || bb.dtype !== 'float32')) {
      throw new Error('_FusedMatMul for non non-float32 tensors not yet supported.');
    }
    if (b.traits.fusedRules === 'fusedXnnpack') {
      if (bias != null && bias.shape.length !== 1) {
        throw new Error(`_FusedMatMul only supports rank-1 bias but got rank ${bias.shape.length}.`);
      }
      if (!WASM_FUSABLE.has(activation)) {
        throw new Error(`${activation} activation not yet supported for FusedConv2D in the wasm backend.`);
      }
      const leftDim = (transposeA ? a.shape[2] : a.shape[1]) as number;
      const rightDim = (transposeB ? bb.shape[1] : bb.shape[2]) as number;
      const batchDims = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), bb.shape.slice(0, -2));
      return fresh(b, [...batchDims, leftDim, rightDim], a.dtype);
    }
    assertNotComplex('matMul', a, bb);
    let shape = batchMatMulShape(a, bb, transposeA, transposeB);
    if (bias != null) shape = tf.backend_util.assertAndGetBroadcastShape(shape, bias.shape);
    const [outShape, dtype] = cpuActivation(shape, a.dtype, activation, alpha);
    return fresh(b, outShape, dtype);
  }),
};
