/** Kernels that create tensors from attrs (Fill, Range, OneHot, …) or gather and select from one (GatherV2, TopK). */
import * as tf from '@tensorflow/tfjs';
import { assertNotComplex, fresh, input, withAttrs, type MetaKernel, type MetaKernelTable } from '../helpers.js';

const util = tf.util;

function filledLike(opName: string): MetaKernel {
  return (inputs, _attrs, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    if (x.dtype === 'string' && b.traits.checks.has('noStringZerosOnesLike')) {
      throw new Error(`${opName} is not supported for string tensors`);
    }
    assertNotComplex(kernel, x);
    return fresh(b, x.shape, x.dtype);
  };
}

export const creationKernels: MetaKernelTable = {
  [tf.GatherV2]: withAttrs<tf.GatherV2Attrs>((inputs, { axis, batchDims }, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    const indices = input(inputs, 'indices', kernel);
    assertNotComplex(kernel, x, indices);
    const parsedAxis = util.parseAxisParam(axis, x.shape)[0] as number;
    const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(x, indices, parsedAxis, batchDims ?? 0);
    if (b.traits.gatherEmptyLeaksInputs && util.sizeFromShape(x.shape) === 0) {
      // wasm returns early here without releasing its reshaped views of x and indices, so both stay
      // referenced; the output keeps the flattened 4-D shape.
      b.incRef(x.dataId);
      b.incRef(indices.dataId);
      const indicesSize = util.sizeFromShape(indices.shape);
      return fresh(b, [info.batchSize, info.outerSize, indicesSize / info.batchSize, info.sliceSize], x.dtype);
    }
    return fresh(b, info.outputShape, x.dtype);
  }),
  [tf.OneHot]: withAttrs<tf.OneHotAttrs>((inputs, { dtype, depth }, b, kernel) => {
    const indices = input(inputs, 'indices', kernel);
    assertNotComplex(kernel, indices);
    return fresh(b, [...indices.shape, depth], dtype);
  }),
  [tf.Fill]: withAttrs<tf.FillAttrs>((_inputs, { shape, value, dtype }, b) => fresh(b, shape, dtype ?? util.inferDtype(value))),
  [tf.ZerosLike]: filledLike('zerosLike'),
  [tf.OnesLike]: filledLike('onesLike'),
  [tf.Range]: withAttrs<tf.RangeAttrs>((_inputs, { start, stop, step, dtype }, b) => {
    const empty = start === stop || (start < stop && step < 0) || (stop < start && step > 1);
    const n = empty ? 0 : Math.abs(Math.ceil((stop - start) / step));
    return fresh(b, [n], dtype);
  }),
  [tf.LinSpace]: withAttrs<tf.LinSpaceAttrs>((_inputs, { num }, b) => fresh(b, [num], 'float32')),
  [tf.TopK]: withAttrs<tf.TopKAttrs>((inputs, { k }, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(kernel, x);
    const shape = x.shape.slice();
    shape[shape.length - 1] = k;
    return [fresh(b, shape, x.dtype), fresh(b, shape.slice(), 'int32')];
  }),
};
