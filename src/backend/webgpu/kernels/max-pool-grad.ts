/**
 * MaxPoolGrad on webgpu in one pass: one invocation per dx element (four channels at once where possible)
 * takes dy of each window that covers it and whose maximum is this element: x here equals the window's
 * max (y, the forward's output, an exact copy of one x) and no earlier in-range position of the window in
 * row-major order does — the first maximum, as tfjs's cpu backend picks on ties (ReLU's zeros make ties
 * common). The earlier positions are scanned only when x equals the max. tfjs-backend-webgpu 4.22 writes an
 * int32 map of positions first (a second pass and buffer) and picks the last maximum on ties.
 */
import * as tf from '@tensorflow/tfjs';
import { POOL_UNIFORMS, poolDispatch, poolGeometry, poolUniforms, poolWorkgroup } from './pool-window.js';
import { assertFloat32, MAX_WORKGROUPS_PER_DIMENSION, program, runStock, WEBGPU_BACKEND, type WebGPUBackendLike } from './program.js';

export function maxPoolGrad({ inputs, backend, attrs }: {
  inputs: tf.MaxPoolGradInputs; backend: WebGPUBackendLike; attrs: tf.MaxPoolGradAttrs;
}): tf.TensorInfo {
  const dy = inputs.dy as tf.TensorInfo;
  const x = inputs.input as tf.TensorInfo;
  const y = inputs.output as tf.TensorInfo;
  assertFloat32('MaxPoolGrad', dy, x, y);
  const { filterSize, strides, pad, dimRoundingMode } = attrs;
  const info = tf.backend_util.computePool2DInfo(x.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const width = info.inChannels % 4 === 0 ? 4 : 1;
  const units = info.inChannels / width;
  const type = width === 4 ? 'vec4<f32>' : 'f32';
  const mask = width === 4 ? 'vec4<bool>' : 'bool';
  const workgroup = poolWorkgroup(info, units);
  const dispatch = poolDispatch(info, units, workgroup);
  if (dispatch.some((d) => d > MAX_WORKGROUPS_PER_DIMENSION)) return runStock(tf.MaxPoolGrad, { inputs, backend, attrs });
  const geometry = poolGeometry(info);
  const prog = program({
    variableNames: ['dy', 'x', 'y'],
    outputShape: [...x.shape],
    shaderKey: `edMaxPoolGrad_${width}_${geometry.key}`,
    dispatchLayout: { x: [3], y: [2], z: [0, 1] },
    dispatch,
    workgroupSize: workgroup,
    outputComponent: width,
    variableComponents: [width, width, width],
    uniforms: POOL_UNIFORMS,
    getUserCode: () => `
  ${geometry.wgsl}
  fn main() {
    let at = pixel();
    if (at.x < 0) { return; }
    let index = ((at.x * uniforms.inH + at.y) * uniforms.inW + at.z) * uniforms.channels + at.w;
    let here = x[index];
    let rows = windowRange(at.y, WINDOW.x, STRIDES.x, uniforms.pads.x, uniforms.outH);
    let cols = windowRange(at.z, WINDOW.y, STRIDES.y, uniforms.pads.y, uniforms.outW);
    let imageRow = at.x * uniforms.inH;
    var sum = ${type}(0.0);
    for (var wy = rows.x; wy <= rows.y; wy = wy + 1) {
      for (var wx = cols.x; wx <= cols.y; wx = wx + 1) {
        let w = ((at.x * uniforms.outH + wy) * uniforms.outW + wx) * uniforms.channels + at.w;
        let top = y[w];
        var take : ${mask} = here == top;
        if (!any(take)) { continue; }
        // Earlier in-range positions of this window holding the same maximum take it instead.
        let r0 = max(wy * STRIDES.x - uniforms.pads.x, 0);
        let c0 = wx * STRIDES.y - uniforms.pads.y;
        for (var r = r0; r <= at.y; r = r + 1) {
          let cEnd = select(min(c0 + WINDOW.y, uniforms.inW), at.z, r == at.y);
          for (var c = max(c0, 0); c < cEnd; c = c + 1) {
            take = take & !(x[((imageRow + r) * uniforms.inW + c) * uniforms.channels + at.w] == top);
          }
        }
        sum = sum + select(${type}(0.0), dy[w], take);
      }
    }
    result[index] = sum;
  }`,
  });
  return backend.runWebGPUProgram(prog, [dy, x, y], 'float32', poolUniforms(info, units));
}

export const maxPoolGradConfig: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: WEBGPU_BACKEND,
  kernelFunc: maxPoolGrad as unknown as tf.KernelFunc,
};
