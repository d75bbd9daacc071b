/**
 * A plain copy, the bandwidth yardstick for kernels that do almost no arithmetic (pooling gradients, the
 * BN-ReLU element-wise work): what the adapter moves per second when a kernel only reads and writes. vec4
 * loads and stores where the size allows, as tfjs-webgpu's own element-wise programs use. Not registered
 * as a kernel: scripts/webgpu-kernels.ts and the tests call it.
 */
import * as tf from '@tensorflow/tfjs';
import { program, type WebGPUBackendLike } from './program.js';

/** A copy of `x`'s values as a vector [x.size]. */
export function copyKernel(x: tf.Tensor): tf.Tensor1D {
  const backend = tf.backend() as unknown as WebGPUBackendLike;
  const width = x.size % 4 === 0 ? 4 : 1;
  const prog = program({
    variableNames: ['x'],
    outputShape: [x.size],
    shaderKey: `edCopy_${width}`,
    dispatchLayout: { x: [0] },
    dispatch: [Math.ceil(x.size / width / 64), 1, 1],
    workgroupSize: [64, 1, 1],
    outputComponent: width,
    size: true,
    getUserCode: () => `
  fn main(index : i32) {
    if (index < uniforms.size) { result[index] = x[index]; }
  }`,
  });
  // A flat index reads any shape's buffer in order; the output is that buffer's copy, as a vector.
  return tf.engine().makeTensorFromTensorInfo(backend.runWebGPUProgram(prog, [x], x.dtype)) as tf.Tensor1D;
}
