/**
 * Sum and Mean over every axis but the last (the batch-norm statistics and its backward's sums on an NHWC
 * tensor: per channel, over N·H·W) on webgpu as column sums of an [R, C] matrix, in two passes: partial
 * sums of row chunks ([S, C], enough workgroups to fill the adapter), then the sum of those partials.
 * Every invocation reads four adjacent channels, and neighbouring invocations neighbouring channels, so
 * the reads are sequential. tfjs-backend-webgpu 4.22 transposes the tensor to [C, R] first (a full extra
 * write and read) and reduces each row in one workgroup. Other reductions go to the stock kernel.
 * Summation order: chunks of consecutive rows, then the chunks in order — float32, like the stock kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { assertFloat32, MAX_WORKGROUPS_PER_DIMENSION, program, runStock, WEBGPU_BACKEND, type WebGPUBackendLike } from './program.js';

type ReduceArgs = { inputs: tf.SumInputs; backend: WebGPUBackendLike; attrs: tf.SumAttrs };

/** Rows summed by one invocation in the first pass: ≥ 64 workgroups' worth of chunks where R allows. */
function chunkRows(rows: number): number {
  return Math.max(16, Math.ceil(rows / 64));
}

function columnSums(
  backend: WebGPUBackendLike, x: tf.TensorInfo, rows: number, cols: number, chunk: number, scale: number, outputShape?: number[],
): tf.TensorInfo {
  const width = cols % 4 === 0 ? 4 : 1;
  const units = cols / width;
  const parts = Math.ceil(rows / chunk);
  const prog = program({
    variableNames: ['x'],
    outputShape: outputShape ?? [parts, cols],
    shaderKey: `edColumnSums_${width}`,
    dispatchLayout: { x: [1], y: [0] },
    dispatch: [Math.ceil(units / 64), parts, 1],
    workgroupSize: [64, 1, 1],
    outputComponent: width,
    variableComponents: [width],
    uniforms: 'rows : i32, units : i32, chunk : i32, scale : f32,',
    getUserCode: () => `
  fn main() {
    let column = i32(globalId.x);
    let part = i32(globalId.y);
    if (column >= uniforms.units) { return; }
    let first = part * uniforms.chunk;
    let last = min(first + uniforms.chunk, uniforms.rows);
    var sum = ${width === 4 ? 'vec4<f32>(0.0)' : '0.0'};
    for (var r = first; r < last; r = r + 1) { sum = sum + x[r * uniforms.units + column]; }
    result[part * uniforms.units + column] = sum * uniforms.scale;
  }`,
  });
  return backend.runWebGPUProgram(prog, [x], 'float32', [
    { type: 'int32', data: [rows] }, { type: 'int32', data: [units] }, { type: 'int32', data: [chunk] }, { type: 'float32', data: [scale] },
  ]);
}

/** Whether this reduction is over every axis but the last of a float32 tensor (rank ≥ 2). */
function overLeadingAxes(x: tf.TensorInfo, axis: number | number[]): boolean {
  const rank = x.shape.length;
  if (x.dtype !== 'float32' || rank < 2) return false;
  const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
  return axes.length === rank - 1 && axes.every((a, i) => a === i);
}

function reduceLeading(args: ReduceArgs, mean: boolean): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x as tf.TensorInfo;
  const cols = x.shape[x.shape.length - 1] ?? 0;
  if (!overLeadingAxes(x, attrs.axis) || tf.util.sizeFromShape(x.shape) === 0 || Math.ceil(cols / 4 / 64) > MAX_WORKGROUPS_PER_DIMENSION) {
    return runStock(mean ? tf.Mean : tf.Sum, args);
  }
  assertFloat32(mean ? 'Mean' : 'Sum', x);
  const rows = tf.util.sizeFromShape(x.shape) / cols;
  const partial = columnSums(backend, x, rows, cols, chunkRows(rows), 1);
  const shape = attrs.keepDims ? x.shape.map((d, i) => (i === x.shape.length - 1 ? d : 1)) : [cols];
  const total = columnSums(backend, partial, partial.shape[0]!, cols, partial.shape[0]!, mean ? 1 / rows : 1, shape);
  (backend as unknown as tf.KernelBackend).disposeData(partial.dataId);
  return total;
}

export const sumConfig: tf.KernelConfig = {
  kernelName: tf.Sum,
  backendName: WEBGPU_BACKEND,
  kernelFunc: ((args: ReduceArgs) => reduceLeading(args, false)) as unknown as tf.KernelFunc,
};

export const meanConfig: tf.KernelConfig = {
  kernelName: tf.Mean,
  backendName: WEBGPU_BACKEND,
  kernelFunc: ((args: ReduceArgs) => reduceLeading(args, true)) as unknown as tf.KernelFunc,
};
