/** Output shapes as the real kernels compute them (following tfjs-backend-cpu and tfjs-core's helpers). */
import * as tf from '@tensorflow/tfjs';
import type { Shape4 } from './helpers.js';

const bu = tf.backend_util;
const util = tf.util;

export function reshapeShape(x: tf.TensorInfo, shape: number[]): number[] {
  const xSize = util.sizeFromShape(x.shape);
  const $shape = util.inferFromImplicitShape(shape, xSize);
  const $xSize = util.sizeFromShape($shape);
  util.assert(
    xSize === $xSize,
    () =>
      `The new shape (${$shape}) has ${$xSize} elements and the old ` +
      `shape (${x.shape}) has ${xSize} elements. The new shape and old ` +
      `shape must have the same number of elements.`,
  );
  return $shape;
}

export function expandDimsShape(shape: number[], dim: number): number[] {
  const rank = shape.length;
  const newShape = shape.slice();
  let $dim = dim;
  if (dim < 0) {
    util.assert(-(rank + 1) <= dim, () => `Axis must be in the interval [${-(rank + 1)}, ${rank}]`);
    $dim = rank + dim + 1;
  }
  newShape.splice($dim, 0, 1);
  return newShape;
}

/** Output shape of a reduction, following the cpu kernels (transpose to inner-most axes first). */
export function reduceShape(kernel: string, xShape: number[], axis: number | number[], keepDims: boolean): number[] {
  const rank = xShape.length;
  const origAxes = util.parseAxisParam(axis, xShape);
  let axes = origAxes;
  let shape = xShape;
  const perm = bu.getAxesPermutation(axes, rank);
  if (perm != null) {
    shape = perm.map((p) => xShape[p] as number);
    axes = bu.getInnerMostAxes(axes.length, rank);
  }
  bu.assertAxesAreInnerMostDims(kernel, axes, rank);
  const [outShape] = bu.computeOutAndReduceShapes(shape, axes);
  return keepDims ? bu.expandShapeToKeepDim(outShape, origAxes) : outShape;
}

export function argReduceShape(kernel: string, xShape: number[], axis: number | number[]): number[] {
  let axes = util.parseAxisParam(axis, xShape);
  let shape = xShape;
  const perm = bu.getAxesPermutation(axes, xShape.length);
  if (perm != null) {
    shape = perm.map((p) => xShape[p] as number);
    axes = bu.getInnerMostAxes(axes.length, shape.length);
  }
  axes = [axes[0] as number];
  bu.assertAxesAreInnerMostDims(kernel, axes, shape.length);
  return bu.computeOutAndReduceShapes(shape, axes)[0];
}

export function batchMatMulShape(a: tf.TensorInfo, bb: tf.TensorInfo, transposeA: boolean, transposeB: boolean): number[] {
  const aRank = a.shape.length;
  const bRank = bb.shape.length;
  const innerShapeA = transposeA ? a.shape[aRank - 2] : a.shape[aRank - 1];
  const innerShapeB = transposeB ? bb.shape[bRank - 1] : bb.shape[bRank - 2];
  const outerShapeA = (transposeA ? a.shape[aRank - 1] : a.shape[aRank - 2]) as number;
  const outerShapeB = (transposeB ? bb.shape[bRank - 2] : bb.shape[bRank - 1]) as number;
  const outerDims = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), bb.shape.slice(0, -2));
  util.assert(
    innerShapeA === innerShapeB,
    () =>
      `Error in matMul: inner shapes (${innerShapeA}) and (` +
      `${innerShapeB}) of Tensors with shapes ${a.shape} and ` +
      `${bb.shape} and transposeA=${transposeA}` +
      ` and transposeB=${transposeB} must match.`,
  );
  return outerDims.concat([outerShapeA, outerShapeB]);
}

export function convInfoOf(xShape: number[], filterShape: number[], a: { strides: [number, number] | number; pad: tf.Conv2DAttrs['pad']; dimRoundingMode?: 'floor' | 'round' | 'ceil' }, dilations: [number, number] | number, dataFormat: 'NHWC' | 'NCHW' | undefined): tf.backend_util.Conv2DInfo {
  const $dataFormat = bu.convertConv2DDataFormat(dataFormat ?? 'NHWC');
  return bu.computeConv2DInfo(xShape as Shape4, filterShape as Shape4, a.strides, dilations, a.pad, a.dimRoundingMode, false, $dataFormat);
}

export function poolInfoOf(xShape: number[], a: tf.MaxPoolAttrs | tf.AvgPoolGradAttrs, withRounding: boolean): tf.backend_util.Conv2DInfo {
  const rounding = withRounding && 'dimRoundingMode' in a ? a.dimRoundingMode : undefined;
  return bu.computePool2DInfo(xShape as Shape4, a.filterSize, a.strides, 1, a.pad, rounding);
}
