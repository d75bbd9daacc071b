/** Shape and data movement: reshapes and views (which alias), casts, concat/stack/split, slices, transposes, pads. */
import * as tf from '@tensorflow/tfjs';
import type { MetaBackend } from '../backend.js';
import { describeShape } from '../backend.js';
import { alias, assertNotComplex, fresh, identity, input, inputList, withAttrs, type MetaKernel, type MetaKernelTable } from '../helpers.js';
import { expandDimsShape, reshapeShape } from '../shapes.js';

const bu = tf.backend_util;
const util = tf.util;

function concatOut(b: MetaBackend, ts: tf.TensorInfo[], axis: number | number[]): tf.TensorInfo {
  const first = ts[0];
  if (first == null) throw new Error('Concat on the meta backend: needs at least one input');
  const $axis = util.parseAxisParam(axis, first.shape)[0] as number;
  const shapes = ts.map((t) => t.shape);
  bu.assertParamsConsistent(shapes, $axis);
  const outShape = bu.computeOutShape(shapes, $axis);
  if (util.sizeFromShape(outShape) === 0) return fresh(b, outShape, first.dtype);
  // Empty inputs are skipped; with exactly one left, cpu hands it back and wasm copies it.
  const nonEmpty = ts.filter((t) => util.sizeFromShape(t.shape) > 0);
  const only = nonEmpty.length === 1 ? nonEmpty[0] : undefined;
  if (only != null) return b.traits.concatSingleAliases ? alias(b, only) : fresh(b, only.shape, only.dtype);
  if (b.traits.checks.has('complexInConcatAndBatchNorm')) assertNotComplex('Concat', ...nonEmpty);
  return fresh(b, outShape, first.dtype);
}

/** cpu checks a slice's bounds; wasm reads whatever it is given. */
function checkSliceBounds(b: MetaBackend, x: tf.TensorInfo, begin: number[], size: number[]): void {
  if (!b.traits.checks.has('sliceBounds')) return;
  const [$begin, $size] = tf.slice_util.parseSliceParams(x, begin, size) as [number[], number[]];
  tf.slice_util.assertParamsValid(x, $begin, $size);
}

const pad: MetaKernel = withAttrs<tf.PadV2Attrs>((inputs, { paddings }, b, kernel) => {
  const x = input(inputs, 'x', kernel);
  assertNotComplex(kernel, x);
  return fresh(b, paddings.map((p, i) => p[0] + (x.shape[i] as number) + p[1]), x.dtype);
});

export const shapeKernels: MetaKernelTable = {
  [tf.Reshape]: withAttrs<tf.ReshapeAttrs>((inputs, { shape }, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    return alias(b, x, reshapeShape(x, shape));
  }),
  [tf.ExpandDims]: withAttrs<tf.ExpandDimsAttrs>((inputs, { dim }, b, kernel) => {
    const x = input(inputs, 'input', kernel);
    return alias(b, x, reshapeShape(x, expandDimsShape(x.shape, dim)));
  }),
  [tf.Identity]: (inputs, _attrs, b, kernel) => identity(b, input(inputs, 'x', kernel)),
  [tf.Cast]: withAttrs<tf.CastAttrs>((inputs, { dtype }, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    if (dtype === 'complex64' || x.dtype === 'complex64') {
      throw new Error('Cast on the meta backend: complex64 tensors are not supported');
    }
    const lossy = util.hasEncodingLoss(x.dtype, dtype);
    // cpu reuses the buffer when the cast loses nothing (it only relabels the dtype).
    if (!lossy && b.traits.castAliasesLossless) return alias(b, x, x.shape, dtype);
    if (lossy && b.traits.checks.has('lossyCastTargets') && dtype !== 'int32' && dtype !== 'bool') {
      throw new Error(`Error in Cast: failed to cast ${x.dtype} to ${dtype}`);
    }
    return fresh(b, x.shape, dtype);
  }),
  [tf.Concat]: withAttrs<tf.ConcatAttrs>((inputs, { axis }, b, kernel) => concatOut(b, inputList(inputs, kernel), axis)),
  [tf.Pack]: withAttrs<tf.PackAttrs>((inputs, { axis }, b, kernel) => {
    const ts = inputList(inputs, kernel);
    const first = ts[0];
    if (first == null) throw new Error('Pack on the meta backend: needs at least one input');
    if (ts.length === 1) return alias(b, first, reshapeShape(first, expandDimsShape(first.shape, axis)));
    for (const t of ts) {
      util.assertShapesMatch(first.shape, t.shape, 'All tensors passed to stack must have matching shapes');
      util.assert(first.dtype === t.dtype, () => 'All tensors passed to stack must have matching dtypes');
    }
    const expanded = ts.map((t) => ({ dataId: t.dataId, dtype: t.dtype, shape: expandDimsShape(t.shape, axis) }));
    // The expanded views are the kernel's own temporaries; only concat's output survives, and with two or
    // more equally shaped inputs that is never an alias.
    const $axis = util.parseAxisParam(axis, (expanded[0] as tf.TensorInfo).shape)[0] as number;
    const shapes = expanded.map((t) => t.shape);
    bu.assertParamsConsistent(shapes, $axis);
    return fresh(b, bu.computeOutShape(shapes, $axis), first.dtype);
  }),
  [tf.Unpack]: withAttrs<tf.UnpackAttrs>((inputs, attrs, b, kernel) => {
    const value = input(inputs, 'value', kernel);
    let { axis } = attrs;
    if (axis < 0) axis += value.shape.length;
    const num = value.shape[axis];
    if (num == null) throw new Error(`Unpack: axis ${axis} is out of range for shape ${describeShape(value.shape)}`);
    const outShape = value.shape.filter((_, i) => i !== axis);
    const outs: tf.TensorInfo[] = [];
    for (let i = 0; i < num; i++) outs.push(fresh(b, outShape.slice(), value.dtype));
    return outs;
  }),
  [tf.SplitV]: withAttrs<tf.SplitVAttrs>((inputs, { numOrSizeSplits, axis }, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    const $axis = util.parseAxisParam(axis, x.shape)[0] as number;
    const sizes = bu.prepareSplitSize(x, numOrSizeSplits, $axis);
    const begin: number[] = new Array<number>(x.shape.length).fill(0);
    return sizes.map((s) => {
      const size = x.shape.slice();
      size[$axis] = s;
      checkSliceBounds(b, x, begin, size);
      begin[$axis] = (begin[$axis] as number) + s;
      return fresh(b, size, x.dtype);
    });
  }),
  [tf.Slice]: withAttrs<tf.SliceAttrs>((inputs, { begin, size }, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(kernel, x);
    const [$begin, $size] = tf.slice_util.parseSliceParams(x, begin, size) as [number[], number[]];
    if (b.traits.checks.has('sliceBounds')) tf.slice_util.assertParamsValid(x, $begin, $size);
    return fresh(b, $size, x.dtype);
  }),
  [tf.StridedSlice]: withAttrs<tf.StridedSliceAttrs>((inputs, a, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(kernel, x);
    const info = tf.slice_util.sliceInfo(x.shape, a.begin, a.end, a.strides, a.beginMask, a.endMask, a.ellipsisMask, a.newAxisMask, a.shrinkAxisMask);
    if (info.isIdentity) return alias(b, x, reshapeShape(x, info.finalShape));
    if (info.sliceDim0 || info.isSimpleSlice) {
      util.assert(x.shape.length >= 1, () => `Input must have rank at least 1, got: ${x.shape.length}`);
      const size = tf.slice_util.computeOutShape(info.begin, info.end, info.strides);
      const [$begin, $size] = tf.slice_util.parseSliceParams(x, info.begin, size) as [number[], number[]];
      if (b.traits.checks.has('sliceBounds')) tf.slice_util.assertParamsValid(x, $begin, $size);
      return fresh(b, reshapeShape({ dataId: x.dataId, shape: $size, dtype: x.dtype }, info.finalShape), x.dtype);
    }
    return fresh(b, info.finalShape, b.traits.stridedSliceDtype === 'input' ? x.dtype : 'float32');
  }),
  [tf.Transpose]: withAttrs<tf.TransposeAttrs>((inputs, { perm }, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(kernel, x);
    return fresh(b, perm.map((p) => x.shape[p] as number), x.dtype);
  }),
  [tf.Tile]: withAttrs<tf.TileAttrs>((inputs, { reps }, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(kernel, x);
    return fresh(b, x.shape.map((d, i) => d * (reps[i] as number)), x.dtype);
  }),
  [tf.PadV2]: pad,
  [tf.MirrorPad]: pad,
  [tf.Reverse]: withAttrs<tf.ReverseAttrs>((inputs, { dims }, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(kernel, x);
    util.parseAxisParam(dims, x.shape);
    if (x.shape.length === 0) return identity(b, x);
    return fresh(b, x.shape, x.dtype);
  }),
};
