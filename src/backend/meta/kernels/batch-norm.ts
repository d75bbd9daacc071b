/** FusedBatchNorm (inference-style batch normalisation; training builds it from element-wise kernels). */
import * as tf from '@tensorflow/tfjs';
import { assertNotComplex, fresh, input, type MetaKernelTable } from '../helpers.js';

export const batchNormKernels: MetaKernelTable = {
  [tf.FusedBatchNorm]: (inputs, _attrs, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    const mean = input(inputs, 'mean', kernel);
    const variance = input(inputs, 'variance', kernel);
    const offset = inputs['offset'];
    const scale = inputs['scale'];
    const { checks } = b.traits;
    if (checks.has('batchNormRanks')) {
      tf.util.assert(mean.shape.length === variance.shape.length, () => 'Batch normalization gradient requires mean and variance to have equal ranks.');
      tf.util.assert(offset == null || mean.shape.length === offset.shape.length, () => 'Batch normalization gradient requires mean and offset to have equal ranks.');
      tf.util.assert(scale == null || mean.shape.length === scale.shape.length, () => 'Batch normalization gradient requires mean and scale to have equal ranks.');
    }
    if (checks.has('complexInConcatAndBatchNorm')) assertNotComplex('batchNorm', x, mean, variance, scale, offset);
    return fresh(b, x.shape, x.dtype);
  },
};
