/** Reductions along axes (Sum, Mean, Max, …), arg-reductions and cumulative sums/products. */
import * as tf from '@tensorflow/tfjs';
import type { MetaBackend } from '../backend.js';
import { assertNotComplex, fresh, input, upcast, withAttrs, type MetaKernel, type MetaKernelTable } from '../helpers.js';
import { argReduceShape, reduceShape } from '../shapes.js';

/** Sum, Prod, Cumsum, Cumprod: cpu upcasts bool to int32, wasm keeps the input's dtype. */
function sumDtype(x: tf.TensorInfo, b: MetaBackend): tf.DataType {
  return b.traits.sumDtype === 'atLeastInt32' ? upcast(x.dtype, 'int32') : x.dtype;
}

function axisReduction(opName: string): MetaKernel {
  return withAttrs<tf.MinAttrs>((inputs, { axis, keepDims }, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(kernel, x);
    return fresh(b, reduceShape(opName, x.shape, axis, keepDims), x.dtype);
  });
}

function argReduction(opName: string): MetaKernel {
  return withAttrs<tf.ArgMaxAttrs>((inputs, { axis }, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(kernel, x);
    return fresh(b, argReduceShape(opName, x.shape, axis), 'int32');
  });
}

function cumulative(opName: string): MetaKernel {
  return (inputs, _attrs, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(kernel, x);
    if (b.traits.checks.has('cumulativeDtypes')) {
      tf.util.assert(x.dtype === 'float32' || x.dtype === 'int32', () => `${opName} does not support ${x.dtype} tensors in the WASM backend`);
    }
    return fresh(b, x.shape, sumDtype(x, b));
  };
}

export const reductionKernels: MetaKernelTable = {
  [tf.Sum]: withAttrs<tf.SumAttrs>((inputs, { axis, keepDims }, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(kernel, x);
    return fresh(b, reduceShape('sum', x.shape, axis, keepDims), sumDtype(x, b));
  }),
  [tf.Prod]: withAttrs<tf.ProdAttrs>((inputs, { axis, keepDims }, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(kernel, x);
    return fresh(b, reduceShape('prod', x.shape, axis, keepDims), sumDtype(x, b));
  }),
  [tf.Mean]: withAttrs<tf.MeanAttrs>((inputs, { axis, keepDims }, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(kernel, x);
    return fresh(b, reduceShape('mean', x.shape, axis, keepDims), 'float32');
  }),
  [tf.Max]: withAttrs<tf.MaxAttrs>((inputs, { reductionIndices, keepDims }, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(kernel, x);
    return fresh(b, reduceShape('max', x.shape, reductionIndices, keepDims), x.dtype);
  }),
  [tf.Min]: axisReduction('min'),
  [tf.All]: axisReduction('all'),
  [tf.Any]: axisReduction('any'),
  [tf.ArgMax]: argReduction('argMax'),
  [tf.ArgMin]: argReduction('argMin'),
  [tf.Cumsum]: cumulative('cumsum'),
  [tf.Cumprod]: cumulative('cumprod'),
};
