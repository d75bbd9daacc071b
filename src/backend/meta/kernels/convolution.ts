/** 2-D convolutions and their gradients: Conv2D, Conv2DBackpropInput, Conv2DBackpropFilter, FusedConv2D. */
import * as tf from '@tensorflow/tfjs';
import type { MetaBackend } from '../backend.js';
import { assertNotComplex, fresh, input, withAttrs, type MetaKernelTable, type Shape4 } from '../helpers.js';
import { convInfoOf } from '../shapes.js';
import { cpuActivation, WASM_FUSABLE } from './fused-activation.js';

/** Conv2D, FusedConv2D, MaxPool, AvgPool: cpu keeps x's dtype, wasm gives float32. */
export function convDtype(b: MetaBackend, x: tf.TensorInfo): tf.DataType {
  return b.traits.convDtype === 'input' ? x.dtype : 'float32';
}

export const convolutionKernels: MetaKernelTable = {
  [tf.Conv2D]: withAttrs<tf.Conv2DAttrs>((inputs, a, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    const filter = input(inputs, 'filter', kernel);
    assertNotComplex('conv2d', x, filter);
    const info = convInfoOf(x.shape, filter.shape, a, a.dilations, a.dataFormat);
    if (b.traits.checks.has('channelsLastConv') && info.dataFormat !== 'channelsLast') {
      throw new Error(`wasm backend Conv2D does not support dataFormat:'${info.dataFormat}'. Please use 'channelsLast'.`);
    }
    return fresh(b, info.outShape, convDtype(b, x));
  }),

  [tf.Conv2DBackpropInput]: withAttrs<tf.Conv2DBackpropInputAttrs>((inputs, a, b, kernel) => {
    const dy = input(inputs, 'dy', kernel);
    const filter = input(inputs, 'filter', kernel);
    assertNotComplex('conv2dBackpropInput', dy, filter);
    const info = convInfoOf(a.inputShape, filter.shape, a, 1, a.dataFormat);
    return fresh(b, info.inShape, 'float32');
  }),

  [tf.Conv2DBackpropFilter]: withAttrs<tf.Conv2DBackpropFilterAttrs>((inputs, a, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    const dy = input(inputs, 'dy', kernel);
    assertNotComplex('conv2dBackpropFilter', x, dy);
    const info = convInfoOf(x.shape, a.filterShape, a, 1, a.dataFormat);
    return fresh(b, info.filterShape, 'float32');
  }),

  [tf.FusedConv2D]: withAttrs<tf.FusedConv2DAttrs>((inputs, a, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    const filter = input(inputs, 'filter', kernel);
    const bias = inputs['bias'];
    const alpha = inputs['preluActivationWeights'];
    if (b.traits.fusedRules === 'fusedXnnpack') {
      const info = tf.backend_util.computeConv2DInfo(x.shape as Shape4, filter.shape as Shape4, a.strides, a.dilations, a.pad, a.dimRoundingMode);
      if (!WASM_FUSABLE.has(a.activation)) {
        throw new Error(`${a.activation} activation not yet supported for FusedConv2D in the wasm backend.`);
      }
      if (bias != null) {
        if (bias.shape.length !== 1) throw new Error(`FusedConv2D only supports rank-1 bias but got rank ${bias.shape.length}.`);
        if (bias.shape[0] !== info.outChannels) {
          throw new Error(`FusedConv2D bias shape (${bias.shape}) does not match the number of output channels (${info.outChannels})`);
        }
      }
      if (a.dataFormat !== 'NHWC') {
        throw new Error(`wasm backend FusedConv2D does not support dataFormat:'${a.dataFormat}'. Please use 'NHWC'.`);
      }
      return fresh(b, info.outShape, convDtype(b, x));
    }
    assertNotComplex('conv2d', x, filter);
    const info = convInfoOf(x.shape, filter.shape, a, a.dilations, a.dataFormat);
    let shape: number[] = info.outShape;
    const nchw = a.dataFormat === 'NCHW';
    if (bias != null) {
      const biasShape = nchw && bias.shape.length === 1 && bias.shape[0] !== 1 ? [bias.shape[0] as number, 1, 1] : bias.shape;
      shape = tf.backend_util.assertAndGetBroadcastShape(shape, biasShape);
    }
    const alphaShape =
      alpha != null && nchw && a.activation === 'prelu' && alpha.shape.length === 1 && alpha.shape[0] !== 1
        ? [alpha.shape[0] as number, 1, 1]
        : alpha?.shape;
    const [outShape, dtype] = cpuActivation(shape, convDtype(b, x), a.activation, alpha, alphaShape);
    return fresh(b, outShape, dtype);
  }),
};
