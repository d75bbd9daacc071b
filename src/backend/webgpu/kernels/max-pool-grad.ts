/**
 * MaxPoolGrad on webgpu in two passes, as tfjs's cpu backend computes it: first each window's position of its
 * first maximum of x in row-major order over the window's in-range positions (strictly greater replaces, so
 * ties — common after ReLU's zeros — keep the first), one invocation per dy element and four channels; then
 * one invocation per dx element (four channels) adds dy of each window that covers it and whose maximum is at
 * its position. Neither pass branches on the data, and y, the forward's output, is not read. A single pass
 * (dx compared with y, the window rescanned on equality to find the first maximum) rescans for almost every
 * invocation on a SIMD adapter, where a vec4 lane group takes the branch if any of its channels does: under a
 * quarter of a copy's bandwidth. tfjs-backend-webgpu 4.22 also writes positions first, but picks the last
 * maximum on ties and indexes through generic coordinate getters.
 */
import * as tf from '@tensorflow/tfjs';
import { POOL_UNIFORMS, poolDispatch, poolGeometry, poolUniforms, poolWorkgroup } from './pool-window.js';
import { assertFloat32, MAX_WORKGROUPS_PER_DIMENSION, program, runStock, WEBGPU_BACKEND, type WebGPUBackendLike } from './program.js';

/**
 * WGSL for each (i, j) of a rows×cols grid, unrolled (pass 1's window taps: the window is a shader constant;
 * a fixed trip count with masks keeps SIMD lanes together where loops of per-invocation bounds would not).
 */
function taps(rows: number, cols: number, body: (i: number, j: number) => string): string {
  const out: string[] = [];
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out.push(body(i, j));
  return out.join('\n    ');
}

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
  const gradGroup = poolWorkgroup(units, info.inWidth);
  const gradDispatch = poolDispatch(info, units, gradGroup);
  const posGroup = poolWorkgroup(units, info.outWidth);
  const posDispatch = poolDispatch(info, units, posGroup, info.outHeight, info.outWidth);
  if ([...gradDispatch, ...posDispatch].some((d) => d > MAX_WORKGROUPS_PER_DIMENSION)) return runStock(tf.MaxPoolGrad, { inputs, backend, attrs });
  const geometry = poolGeometry(info);
  const uniforms = poolUniforms(info, units);

  // Pass 1: per window and channel, the row-major offset in the window of its first maximum (-1: none, as
  // cpu's for a window of -Infinity or NaN), as f32 (exact: at most WINDOW.x·WINDOW.y).
  const positionsProgram = program({
    variableNames: ['x'],
    outputShape: [...dy.shape],
    shaderKey: `edMaxPoolPositions_${width}_${geometry.key}`,
    dispatchLayout: { x: [3], y: [2], z: [0, 1] },
    dispatch: posDispatch,
    workgroupSize: posGroup,
    outputComponent: width,
    variableComponents: [width],
    uniforms: POOL_UNIFORMS,
    getUserCode: () => `
  ${geometry.wgsl}
  fn main() {
    let c = i32(globalId.x);
    let col = i32(globalId.y);
    let imageRow = i32(globalId.z);
    if (c >= uniforms.channels || col >= uniforms.outW || imageRow >= uniforms.images * uniforms.outH) { return; }
    let image = imageRow / uniforms.outH;
    let row = imageRow - image * uniforms.outH;
    let r0 = row * STRIDES.x - uniforms.pads.x;
    let c0 = col * STRIDES.y - uniforms.pads.y;
    var best = ${type}(-uniforms.INFINITY);
    var at = ${type}(-1.0);
    ${taps(info.effectiveFilterHeight, info.effectiveFilterWidth, (i, j) => `{
      let r = r0 + ${i};
      let cc = c0 + ${j};
      let inside = r >= 0 && r < uniforms.inH && cc >= 0 && cc < uniforms.inW;
      let v = x[((image * uniforms.inH + clamp(r, 0, uniforms.inH - 1)) * uniforms.inW + clamp(cc, 0, uniforms.inW - 1)) * uniforms.channels + c];
      let greater = (v > best) & ${mask}(inside);
      best = select(best, v, greater);
      at = select(at, ${type}(${i * info.effectiveFilterWidth + j}.0), greater);
    }`)}
    result[(imageRow * uniforms.outW + col) * uniforms.channels + c] = at;
  }`,
  });
  const positions = backend.runWebGPUProgram(positionsProgram, [x], 'float32', uniforms);

  // Pass 2: dx gathers dy of the covering windows whose maximum is here.
  const gradProgram = program({
    variableNames: ['dy', 'positions'],
    outputShape: [...x.shape],
    shaderKey: `edMaxPoolGrad_${width}_${geometry.key}`,
    dispatchLayout: { x: [3], y: [2], z: [0, 1] },
    dispatch: gradDispatch,
    workgroupSize: gradGroup,
    outputComponent: width,
    variableComponents: [width, width],
    uniforms: POOL_UNIFORMS,
    getUserCode: () => `
  ${geometry.wgsl}
  fn main() {
    let at = pixel();
    if (at.x < 0) { return; }
    let index = ((at.x * uniforms.inH + at.y) * uniforms.inW + at.z) * uniforms.channels + at.w;
    let rows = windowRange(at.y, WINDOW.x, STRIDES.x, uniforms.pads.x, uniforms.outH);
    let cols = windowRange(at.z, WINDOW.y, STRIDES.y, uniforms.pads.y, uniforms.outW);
    var sum = ${type}(0.0);
    for (var wy = rows.x; wy <= rows.y; wy = wy + 1) {
      let rowBase = (at.x * uniforms.outH + wy) * uniforms.outW;
      let inRow = (at.y - (wy * STRIDES.x - uniforms.pads.x)) * WINDOW.y;
      for (var wx = cols.x; wx <= cols.y; wx = wx + 1) {
        let w = (rowBase + wx) * uniforms.channels + at.w;
        let here = ${type}(f32(inRow + at.z - (wx * STRIDES.y - uniforms.pads.y)));
        sum = sum + select(${type}(0.0), dy[w], positions[w] == here);
      }
    }
    result[index] = sum;
  }`,
  });
  const dx = backend.runWebGPUProgram(gradProgram, [dy, positions], 'float32', uniforms);
  (backend as unknown as tf.KernelBackend).disposeData(positions.dataId);
  return dx;
}

export const maxPoolGradConfig: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: WEBGPU_BACKEND,
  kernelFunc: maxPoolGrad as unknown as tf.KernelFunc,
};
