/**
 * Conv2DBackpropFilter on webgpu as an implicit GEMM: dW[(r, s, ci), co] = Σ_(n, oy, ox) x[n, oy·sh + r − pt,
 * ox·sw + s − pl, ci] · dy[n, oy, ox, co], so M = kh·kw·cin, N = cout, K = batch·outH·outW, and the [M, N]
 * result is the filter's [kh, kw, cin, cout] layout as it stands. tfjs-backend-webgpu 4.22 runs one
 * invocation per weight looping over all K positions (no tiling, no reuse of x or dy between invocations).
 * Filter size and strides are WGSL constants (one pipeline per such variant; a DenseNet has three: 7×7/2,
 * 3×3/1, 1×1/1); sizes and paddings are uniforms.
 */
import * as tf from '@tensorflow/tfjs';
import { GEMM_UNIFORMS, GEMM_WORKGROUP, gemmDispatch, gemmShader, type GemmSource } from './implicit-gemm.js';
import { assertFloat32, MAX_WORKGROUPS_PER_DIMENSION, program, runStock, WEBGPU_BACKEND, type WebGPUBackendLike } from './program.js';

type Shape4 = [number, number, number, number];

/**
 * `vec4`: cin and cout are multiples of 4, so four consecutive rows m (consecutive ci, the same tap) are
 * four adjacent floats of x, and four consecutive co of dy: x and dy are bound as vec4 and read whole.
 */
function source(kw: number, sh: number, sw: number, vec4: boolean): GemmSource {
  return {
    vec4Output: vec4,
    // A(m, k): m = (r·kw + s)·cin + ci over the filter, k = (n·oh + oy)·ow + ox over dy's positions.
    a: {
      decl: 'var aR : array<i32, 16>; var aS : array<i32, 16>; var aC : array<i32, 16>;',
      slot: (s) => `let rs = idx / uniforms.cin; aC[${s}] = idx - rs * uniforms.cin; aR[${s}] = rs / ${kw}; aS[${s}] = rs - aR[${s}] * ${kw};`,
      tile: `let img = k / uniforms.outHW; let pos = k - img * uniforms.outHW; let oy = pos / uniforms.outW;
      let iy0 = oy * ${sh} - uniforms.pads.x; let ix0 = (pos - oy * uniforms.outW) * ${sw} - uniforms.pads.y;
      let xImg = img * uniforms.inH;`,
      load: (s) => `let iy = iy0 + aR[${s}]; let ix = ix0 + aS[${s}];
        if (iy >= 0 && iy < uniforms.inH && ix >= 0 && ix < uniforms.inW) { val = x[((xImg + iy) * uniforms.inW + ix) * uniforms.cin + aC[${s}]]; }`,
      loadVec4: vec4 ? (q) => `let iy = iy0 + aR[${4 * q}]; let ix = ix0 + aS[${4 * q}];
        if (iy >= 0 && iy < uniforms.inH && ix >= 0 && ix < uniforms.inW) { v = x[(((xImg + iy) * uniforms.inW + ix) * uniforms.cin + aC[${4 * q}]) / 4]; }` : undefined,
    },
    // B(k, co) = dy[k, co]: dy is already [K, N] row-major.
    b: {
      decl: 'var bN : array<i32, 16>;',
      slot: (s) => `bN[${s}] = idx;`,
      tile: 'let dyRow = k * uniforms.dimN;',
      load: (s) => `val = dy[dyRow + bN[${s}]];`,
      loadVec4: vec4 ? (q) => `v = dy[(dyRow + bN[${4 * q}]) / 4];` : undefined,
    },
  };
}

export function conv2DBackpropFilter({ inputs, backend, attrs }: {
  inputs: tf.Conv2DBackpropFilterInputs; backend: WebGPUBackendLike; attrs: tf.Conv2DBackpropFilterAttrs;
}): tf.TensorInfo {
  const x = inputs.x as tf.TensorInfo;
  const dy = inputs.dy as tf.TensorInfo;
  assertFloat32('Conv2DBackpropFilter', x, dy);
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
  const format = tf.backend_util.convertConv2DDataFormat(dataFormat);
  if (format !== 'channelsLast') throw new Error(`webgpu-kernels: Conv2DBackpropFilter supports NHWC only, got ${dataFormat}`);
  const info = tf.backend_util.computeConv2DInfo(x.shape as Shape4, filterShape, strides, 1, pad, dimRoundingMode, false, format);
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, inChannels: cin, outChannels: cout } = info;
  const m = kh * kw * cin;
  const k = info.batchSize * info.outHeight * info.outWidth;
  const vec4 = cin % 4 === 0 && cout % 4 === 0;
  const dispatch = gemmDispatch(m, cout);
  if (dispatch.some((d) => d > MAX_WORKGROUPS_PER_DIMENSION)) return runStock(tf.Conv2DBackpropFilter, { inputs, backend, attrs });
  const prog = program({
    variableNames: ['x', 'dy'],
    outputShape: [kh, kw, cin, cout],
    shaderKey: `edFilterGradGemm_${kw}_${sh}_${sw}_${vec4}`,
    variableComponents: vec4 ? [4, 4] : [1, 1],
    outputComponent: vec4 ? 4 : 1,
    dispatchLayout: { x: [3], y: [0, 1, 2] },
    dispatch,
    workgroupSize: GEMM_WORKGROUP,
    uniforms: `${GEMM_UNIFORMS}cin : i32, inH : i32, inW : i32, outW : i32, outHW : i32, pads : vec2<i32>,`,
    getUserCode: () => gemmShader(source(kw, sh, sw, vec4)),
  });
  const uniforms = [
    { type: 'int32' as const, data: [m] }, { type: 'int32' as const, data: [cout] }, { type: 'int32' as const, data: [k] },
    { type: 'int32' as const, data: [cin] }, { type: 'int32' as const, data: [info.inHeight] }, { type: 'int32' as const, data: [info.inWidth] },
    { type: 'int32' as const, data: [info.outWidth] }, { type: 'int32' as const, data: [info.outHeight * info.outWidth] },
    { type: 'int32' as const, data: [info.padInfo.top, info.padInfo.left] },
  ];
  return backend.runWebGPUProgram(prog, [x, dy], 'float32', uniforms);
}

export const conv2DBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: WEBGPU_BACKEND,
  kernelFunc: conv2DBackpropFilter as unknown as tf.KernelFunc,
};
