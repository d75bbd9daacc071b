/** Element-wise kernels: unary, binary (broadcasting), AddN, Select, Prelu, EluGrad. */
import * as tf from '@tensorflow/tfjs';
import type { MetaBackend } from '../backend.js';
import { assertNotComplex, fresh, input, inputList, upcast, type MetaKernel, type MetaKernelTable } from '../helpers.js';

function unary(dtypeOf: (x: tf.TensorInfo, b: MetaBackend) => tf.DataType): MetaKernel {
  return (inputs, _attrs, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(kernel, x);
    return fresh(b, x.shape, dtypeOf(x, b));
  };
}

function binary(dtypeOf: (a: tf.TensorInfo, b: MetaBackend) => tf.DataType): MetaKernel {
  return (inputs, _attrs, b, kernel) => {
    const x = input(inputs, 'a', kernel);
    const y = input(inputs, 'b', kernel);
    assertNotComplex(kernel, x, y);
    return fresh(b, tf.backend_util.assertAndGetBroadcastShape(x.shape, y.shape), dtypeOf(x, b));
  };
}

const sameDtype = (x: tf.TensorInfo): tf.DataType => x.dtype;
const float32 = (): tf.DataType => 'float32';
const boolean = (): tf.DataType => 'bool';

const SAME_DTYPE_UNARY = [
  tf.Abs, tf.Acos, tf.Acosh, tf.Asin, tf.Asinh, tf.Atan, tf.Atanh, tf.Ceil, tf.ClipByValue, tf.Cos, tf.Cosh, tf.Elu,
  tf.Erf, tf.Floor, tf.Log, tf.Log1p, tf.Neg, tf.Reciprocal, tf.Relu, tf.Relu6, tf.Round, tf.Rsqrt, tf.Selu,
  tf.Sigmoid, tf.Sign, tf.Sin, tf.Sinh, tf.Softplus, tf.Sqrt, tf.Square, tf.Step, tf.Tan, tf.Tanh,
];
const SAME_DTYPE_BINARY = [
  tf.Add, tf.Sub, tf.Multiply, tf.RealDiv, tf.Maximum, tf.Minimum, tf.Pow, tf.SquaredDifference, tf.Mod, tf.Atan2,
];
const BOOL_BINARY = [
  tf.Equal, tf.NotEqual, tf.Greater, tf.GreaterEqual, tf.Less, tf.LessEqual, tf.LogicalAnd, tf.LogicalOr, tf.LogicalXor,
];

export const elementwiseKernels: MetaKernelTable = {
  ...Object.fromEntries(SAME_DTYPE_UNARY.map((name) => [name, unary(sameDtype)])),
  [tf.Exp]: unary(float32),
  [tf.Expm1]: unary((x, b) => (b.traits.expm1Dtype === 'input' ? x.dtype : 'float32')),
  [tf.LeakyRelu]: unary(float32),
  [tf.IsFinite]: unary(boolean),
  [tf.IsInf]: unary(boolean),
  [tf.IsNan]: unary(boolean),
  [tf.LogicalNot]: unary((x, b) => (b.traits.logicalNotDtype === 'bool' ? 'bool' : x.dtype)),

  [tf.Prelu]: (inputs, _attrs, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    const alpha = input(inputs, 'alpha', kernel);
    assertNotComplex(kernel, x, alpha);
    const shape = b.traits.preluBroadcasts ? tf.backend_util.assertAndGetBroadcastShape(x.shape, alpha.shape) : x.shape;
    return fresh(b, shape, 'float32');
  },

  [tf.EluGrad]: (inputs, _attrs, b, kernel) => {
    const dy = input(inputs, 'dy', kernel);
    const y = input(inputs, 'y', kernel);
    assertNotComplex(kernel, dy, y);
    return fresh(b, y.shape, 'float32');
  },

  ...Object.fromEntries(SAME_DTYPE_BINARY.map((name) => [name, binary(sameDtype)])),
  [tf.FloorDiv]: binary((a, b) => (b.traits.floorDivDtype === 'int32' ? 'int32' : a.dtype)),
  ...Object.fromEntries(BOOL_BINARY.map((name) => [name, binary(boolean)])),

  [tf.AddN]: (inputs, _attrs, b, kernel) => {
    const ts = inputList(inputs, kernel);
    assertNotComplex(kernel, ...ts);
    const first = ts[0];
    if (first == null) throw new Error('AddN on the meta backend: needs at least one input');
    return fresh(b, first.shape, first.dtype);
  },

  [tf.Select]: (inputs, _attrs, b, kernel) => {
    const condition = input(inputs, 'condition', kernel);
    const t = input(inputs, 't', kernel);
    const e = input(inputs, 'e', kernel);
    assertNotComplex(kernel, condition, t, e);
    return fresh(b, t.shape, b.traits.selectDtype === 'upcast' ? upcast(t.dtype, e.dtype) : t.dtype);
  },
};
