/**
 * Backprop kernels that tfjs-core registers but does not export as ops. The recomputing gradients call them
 * directly, exactly as tfjs-core's own gradient functions do.
 */
import * as tf from '@tensorflow/tfjs';

export type Padding = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];

/** Runs a kernel with typed inputs and attributes (the engine's signature takes untyped maps). */
function runKernel<I extends object, A extends object>(name: string, inputs: I, attrs: A): tf.Tensor4D {
  return tf.engine().runKernel(name, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/** dL/dW of `tf.conv2d(x, W, strides, pad)` for NHWC tensors. */
export function conv2dBackpropFilter(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  strides: number,
  pad: Padding,
): tf.Tensor4D {
  return runKernel<tf.Conv2DBackpropFilterInputs, tf.Conv2DBackpropFilterAttrs>(tf.Conv2DBackpropFilter, { x, dy }, {
    strides: [strides, strides],
    pad: pad as tf.Conv2DBackpropFilterAttrs['pad'],
    dataFormat: 'NHWC',
    dimRoundingMode: undefined,
    filterShape,
  });
}

/** dL/dx of `tf.conv2d(x, W, strides, pad)` for NHWC tensors. */
export function conv2dBackpropInput(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  inputShape: [number, number, number, number],
  strides: number,
  pad: Padding,
): tf.Tensor4D {
  return runKernel<tf.Conv2DBackpropInputInputs, tf.Conv2DBackpropInputAttrs>(tf.Conv2DBackpropInput, { dy, filter }, {
    strides: [strides, strides],
    pad: pad as tf.Conv2DBackpropInputAttrs['pad'],
    dataFormat: 'NHWC',
    dimRoundingMode: undefined,
    inputShape,
  });
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
  return runKernel<tf.MaxPoolGradInputs, tf.MaxPoolGradAttrs>(tf.MaxPoolGrad, { dy, input, output }, { filterSize, strides, pad, dimRoundingMode: undefined });
}

/** dL/dx of `tf.avgPool(x, size, strides, pad)`. */
export function avgPoolGrad(
  dy: tf.Tensor4D,
  input: tf.Tensor4D,
  filterSize: number,
  strides: number,
  pad: number | 'same' | 'valid',
): tf.Tensor4D {
  return runKernel<tf.AvgPoolGradInputs, tf.AvgPoolGradAttrs>(tf.AvgPoolGrad, { dy, input }, { filterSize, strides, pad });
}
