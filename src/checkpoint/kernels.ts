/**
 * Backprop kernels that tfjs-core registers but does not export as ops. The recomputing gradients call them
 * directly, exactly as tfjs-core's own gradient functions do.
 */
import * as tf from '@tensorflow/tfjs';

export type Padding = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];

/** dL/dW of `tf.conv2d(x, W, strides, pad)` for NHWC tensors. */
export function conv2dBackpropFilter(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  strides: number,
  pad: Padding,
): tf.Tensor4D {
  return tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
    strides: [strides, strides],
    pad,
    dataFormat: 'NHWC',
    dimRoundingMode: undefined,
    filterShape,
  } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/** dL/dx of `tf.conv2d(x, W, strides, pad)` for NHWC tensors. */
export function conv2dBackpropInput(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  inputShape: [number, number, number, number],
  strides: number,
  pad: Padding,
): tf.Tensor4D {
  return tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, {
    strides: [strides, strides],
    pad,
    dataFormat: 'NHWC',
    dimRoundingMode: undefined,
    inputShape,
  } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/** dL/dx of `tf.maxPool(x, size, strides, pad)`; `output` is that max-pool's result. */
export function maxPoolGrad(
  dy: tf.Tensor4D,
  input: tf.Tensor4D,
  output: tf.Tensor4D,
  filterSize: number,
  strides: number,
  pad: number | 'same' | 'valid',
): tf.Tensor4D {
  return tf.engine().runKernel('MaxPoolGrad', { dy, input, output }, {
    filterSize,
    strides,
    pad,
    dimRoundingMode: undefined,
  } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/** dL/dx of `tf.avgPool(x, size, strides, pad)`. */
export function avgPoolGrad(
  dy: tf.Tensor4D,
  input: tf.Tensor4D,
  filterSize: number,
  strides: number,
  pad: number | 'same' | 'valid',
): tf.Tensor4D {
  return tf.engine().runKernel('AvgPoolGrad', { dy, input }, {
    filterSize,
    strides,
    pad,
  } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}
