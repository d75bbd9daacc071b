/**
 * AvgPoolGrad on webgpu: one invocation per dx element (four channels at once where the channel count
 * allows) adds dy over the windows that cover it, × 1/(window area) — as tfjs's cpu backend, whose
 * divisor counts padded positions too; where the windows tile the input (a transition's 2×2/2), one read
 * and no loop. A gather: no atomics, each dx written once. tfjs-backend-webgpu
 * 4.22's AvgPool2DBackpropProgram does the same gather through generic coordinate getters and float
 * divisions per tap, at a small fraction of a plain copy's bandwidth on the same adapter.
 */
import * as tf from '@tensorflow/tfjs';
import { POOL_UNIFORMS, poolDispatch, poolGeometry, poolUniforms, poolWorkgroup } from './pool-window.js';
import { assertFloat32, MAX_WORKGROUPS_PER_DIMENSION, program, runStock, WEBGPU_BACKEND, type WebGPUBackendLike } from './program.js';

export function avgPoolGrad({ inputs, backend, attrs }: {
  inputs: tf.AvgPoolGradInputs; backend: WebGPUBackendLike; attrs: tf.AvgPoolGradAttrs;
}): tf.TensorInfo {
  const dy = inputs.dy as tf.TensorInfo;
  const x = inputs.input as tf.TensorInfo;
  assertFloat32('AvgPoolGrad', dy);
  const { filterSize, strides, pad } = attrs;
  const info = tf.backend_util.computePool2DInfo(x.shape as [number, number, number, number], filterSize, strides, 1, pad);
  const width = info.inChannels % 4 === 0 ? 4 : 1;
  const units = info.inChannels / width;
  const workgroup = poolWorkgroup(units, info.inWidth);
  const dispatch = poolDispatch(info, units, workgroup);
  if (dispatch.some((d) => d > MAX_WORKGROUPS_PER_DIMENSION)) return runStock(tf.AvgPoolGrad, { inputs, backend, attrs });
  const geometry = poolGeometry(info);
  const tiled = info.strideHeight === info.effectiveFilterHeight && info.strideWidth === info.effectiveFilterWidth
    && info.padInfo.top === 0 && info.padInfo.left === 0;
  const zero = width === 4 ? 'vec4<f32>(0.0)' : '0.0';
  const prog = program({
    variableNames: ['dy'],
    outputShape: [...x.shape],
    shaderKey: `edAvgPoolGrad_${width}_${geometry.key}${tiled ? '_tiled' : ''}`,
    dispatchLayout: { x: [3], y: [2], z: [0, 1] },
    dispatch,
    workgroupSize: workgroup,
    outputComponent: width,
    uniforms: `${POOL_UNIFORMS} scale : f32,`,
    getUserCode: () => `
  ${geometry.wgsl}
  fn main() {
    let at = pixel();
    if (at.x < 0) { return; }
    let index = ((at.x * uniforms.inH + at.y) * uniforms.inW + at.z) * uniforms.channels + at.w;
    ${tiled ? `
    // Windows tile the input (stride = window, no padding): exactly one covers this element, or none in the
    // rows and columns past the last whole window.
    let wy = at.y / STRIDES.x;
    let wx = at.z / STRIDES.y;
    var sum = ${zero};
    if (wy < uniforms.outH && wx < uniforms.outW) { sum = dy[((at.x * uniforms.outH + wy) * uniforms.outW + wx) * uniforms.channels + at.w]; }` : `
    let rows = windowRange(at.y, WINDOW.x, STRIDES.x, uniforms.pads.x, uniforms.outH);
    let cols = windowRange(at.z, WINDOW.y, STRIDES.y, uniforms.pads.y, uniforms.outW);
    var sum = ${zero};
    for (var wy = rows.x; wy <= rows.y; wy = wy + 1) {
      let rowBase = (at.x * uniforms.outH + wy) * uniforms.outW;
      for (var wx = cols.x; wx <= cols.y; wx = wx + 1) {
        sum = sum + dy[(rowBase + wx) * uniforms.channels + at.w];
      }
    }
    `}
    result[index] = sum * uniforms.scale;
  }`,
  });
  const scale = 1 / (info.filterHeight * info.filterWidth);
  return backend.runWebGPUProgram(prog, [dy], 'float32', [...poolUniforms(info, units), { type: 'float32', data: [scale] }]);
}

export const avgPoolGradConfig: tf.KernelConfig = {
  kernelName: tf.AvgPoolGrad,
  backendName: WEBGPU_BACKEND,
  kernelFunc: avgPoolGrad as unknown as tf.KernelFunc,
};
