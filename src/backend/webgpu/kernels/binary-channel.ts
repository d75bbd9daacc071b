/**
 * Multiply, Add and Sub on webgpu for the two operand layouts batch norm and ReLU's backward run:
 * - channel broadcast: one operand's only non-1 dimension is the other's last (a per-channel [C] or
 *   [1,1,1,C] vector against an [N,H,W,C] tensor: x·scale[c], x + shift[c]): out[i] = op(a[i], v[i mod C]);
 * - same shape (dy·mask): out[i] = op(a[i], b[i]).
 * Flat indices, vec4 where C (or the size) allows, one integer modulo per invocation. tfjs-backend-webgpu
 * 4.22's BinaryOpProgram turns every output index into coordinates and back for each operand (for C < 128
 * a workgroup-memory copy of the vector too): several integer divisions per element, which a CPU adapter
 * scalarizes — a quarter of a plain copy's bandwidth. Each output value is one float32 op on the same two
 * float32 values as tfjs's cpu backend, so the results are bit-equal to it. Anything else (other dtypes,
 * other broadcasts, tensors tfjs would compute on the CPU) goes to the stock kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { program, runStock, WEBGPU_BACKEND, type WebGPUBackendLike } from './program.js';

type BinaryArgs = { inputs: tf.BinaryInputs; backend: WebGPUBackendLike };

/** The layout of a call ours covers: which operand is the full tensor, and whether the other is a vector. */
interface Plan { full: 'a' | 'b'; channels: number | null; outputShape: number[] }

/** Whether `small`'s only non-1 dimension is its last and equals `full`'s last (C), with rank ≤ full's. */
function isChannelVector(small: readonly number[], full: readonly number[]): boolean {
  const c = full[full.length - 1];
  return full.length >= 2 && small.length >= 1 && small.length <= full.length
    && small[small.length - 1] === c && small.slice(0, -1).every((d) => d === 1);
}

function plan(a: tf.TensorInfo, b: tf.TensorInfo): Plan | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  if (tf.util.arraysEqual(a.shape, b.shape)) return { full: 'a', channels: null, outputShape: [...a.shape] };
  // The vector is the operand of lower size (a [1,C] against a [C]: either; the result is the larger rank's shape).
  const aFirst = tf.util.sizeFromShape(a.shape) >= tf.util.sizeFromShape(b.shape);
  const [full, small] = aFirst ? [a, b] : [b, a];
  if (!isChannelVector(small.shape, full.shape)) return null;
  return { full: aFirst ? 'a' : 'b', channels: full.shape[full.shape.length - 1]!, outputShape: [...full.shape] };
}

/** tfjs-webgpu's own test for computing small CPU-resident tensors on the CPU (where it has one). */
function stockWouldUseCpu(backend: WebGPUBackendLike, inputs: tf.TensorInfo[]): boolean {
  const b = backend as unknown as { shouldExecuteOnCPU?: (inputs: tf.TensorInfo[]) => boolean };
  return b.shouldExecuteOnCPU?.(inputs) ?? false;
}

function binaryChannel(kernelName: string, operator: '*' | '+' | '-') {
  return (args: BinaryArgs): tf.TensorInfo => {
    const { inputs, backend } = args;
    const a = inputs.a as tf.TensorInfo;
    const b = inputs.b as tf.TensorInfo;
    const p = plan(a, b);
    const size = p ? tf.util.sizeFromShape(p.outputShape) : 0;
    if (!p || size === 0 || stockWouldUseCpu(backend, [a, b])) return runStock(kernelName, args);
    const width = (p.channels ?? size) % 4 === 0 ? 4 : 1;
    // The operand read at the flat index, and the other: at the same index, or at its channel.
    const other = p.channels === null ? 'index' : 'index % uniforms.units';
    // Converted: a float32 tensor cast from int32 or bool keeps its integer buffer in tfjs-webgpu (Cast is an
    // identity there), and the buffer's type is what the shader declares.
    const type = width === 4 ? 'vec4<f32>' : 'f32';
    const [left, right] = p.full === 'a' ? ['A[index]', `B[${other}]`] : [`A[${other}]`, 'B[index]'];
    const prog = program({
      variableNames: ['A', 'B'],
      outputShape: p.outputShape,
      shaderKey: `edBinary_${kernelName}_${width}_${p.channels === null ? 'same' : p.full}`,
      dispatchLayout: { x: [...p.outputShape.keys()] },
      dispatch: [Math.ceil(size / width / 64), 1, 1],
      workgroupSize: [64, 1, 1],
      outputComponent: width,
      variableComponents: [width, width],
      size: true,
      uniforms: 'units : i32,',
      getUserCode: () => `
  fn main(index : i32) {
    if (index < uniforms.size) { result[index] = ${type}(${left}) ${operator} ${type}(${right}); }
  }`,
    });
    const units = (p.channels ?? size) / width;
    return backend.runWebGPUProgram(prog, [a, b], 'float32', [{ type: 'int32', data: [units] }]);
  };
}

function config(kernelName: string, operator: '*' | '+' | '-'): tf.KernelConfig {
  return { kernelName, backendName: WEBGPU_BACKEND, kernelFunc: binaryChannel(kernelName, operator) as unknown as tf.KernelFunc };
}

export const multiplyConfig = config(tf.Multiply, '*');
export const addConfig = config(tf.Add, '+');
export const subConfig = config(tf.Sub, '-');
