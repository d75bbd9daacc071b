/** 2-D pooling and its gradients. */
import * as tf from '@tensorflow/tfjs';
import type { MetaBackend } from '../backend.js';
import { alias, assertNotComplex, fresh, input, withAttrs, type MetaKernel, type MetaKernelTable } from '../helpers.js';
import { poolInfoOf } from '../shapes.js';
import { convDtype } from './convolution.js';

function pool(name: typeof tf.MaxPool | typeof tf.AvgPool, opName: string): MetaKernel {
  return withAttrs<tf.MaxPoolAttrs>((inputs, a, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(opName, x);
    if (name === tf.MaxPool && b.traits.checks.has('float32MaxPool')) {
      tf.util.assert(x.dtype === 'float32', () => `Error in MaxPool: only float32 input is supported. Got ${x.dtype}.`);
    }
    const info = poolInfoOf(x.shape, a, true);
    // cpu hands back the input itself for a 1x1 window that keeps the shape.
    if (b.traits.poolIdentityAliases && info.filterWidth === 1 && info.filterHeight === 1 && tf.util.arraysEqual(info.inShape, info.outShape)) {
      return alias(b, x);
    }
    return fresh(b, info.outShape, convDtype(b, x));
  });
}

function poolGradDtype(b: MetaBackend, x: tf.TensorInfo): tf.DataType {
  return b.traits.poolGradDtype === 'input' ? x.dtype : 'float32';
}

export const poolingKernels: MetaKernelTable = {
  [tf.MaxPool]: pool(tf.MaxPool, 'maxPool'),
  [tf.AvgPool]: pool(tf.AvgPool, 'avgPool'),
  [tf.MaxPoolGrad]: withAttrs<tf.MaxPoolGradAttrs>((inputs, a, b, kernel) => {
    input(inputs, 'dy', kernel);
    const x = input(inputs, 'input', kernel);
    const output = input(inputs, 'output', kernel);
    assertNotComplex('maxPoolGrad', x, output);
    poolInfoOf(x.shape, a, true);
    return fresh(b, x.shape, poolGradDtype(b, x));
  }),
  [tf.AvgPoolGrad]: withAttrs<tf.AvgPoolGradAttrs>((inputs, a, b, kernel) => {
    const dy = input(inputs, 'dy', kernel);
    const x = input(inputs, 'input', kernel);
    assertNotComplex('avgPoolGrad', dy, x);
    poolInfoOf(x.shape, a, false);
    return fresh(b, x.shape, poolGradDtype(b, x));
  }),
};
