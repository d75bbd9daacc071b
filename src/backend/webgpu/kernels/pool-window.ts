/**
 * Shared by the pooling gradients: which pooling windows cover an input position, as WGSL. A window w
 * (of size f, stride s, leading pad p) covers input row t when w·s − p ≤ t < w·s − p + f, so for
 * u = t + p: ⌈(u − f + 1)/s⌉ ≤ w ≤ ⌊u/s⌋, clipped to the output. Integer maths only (no float division).
 */
import type * as tf from '@tensorflow/tfjs';
import type { Uniform } from './program.js';

export const POOL_UNIFORMS = 'images : i32, inH : i32, inW : i32, outH : i32, outW : i32, channels : i32, pads : vec2<i32>,';

export function poolUniforms(info: tf.backend_util.Conv2DInfo, channelUnits: number): Uniform[] {
  return [
    { type: 'int32', data: [info.batchSize] }, { type: 'int32', data: [info.inHeight] }, { type: 'int32', data: [info.inWidth] },
    { type: 'int32', data: [info.outHeight] }, { type: 'int32', data: [info.outWidth] },
    { type: 'int32', data: [channelUnits] },
    { type: 'int32', data: [info.padInfo.top, info.padInfo.left] },
  ];
}

/**
 * Window size and strides are WGSL constants (in the shader key; a DenseNet has two variants, 3×3/2 and
 * 2×2/2), so the divisions by a stride are shifts: integer division is scalarized per lane on a CPU adapter
 * and slow on GPUs. One invocation per (channel unit, column, image·row): no division to find its element.
 */
export function poolGeometry(info: tf.backend_util.Conv2DInfo): { key: string; wgsl: string } {
  const { effectiveFilterHeight: fh, effectiveFilterWidth: fw, strideHeight: sh, strideWidth: sw } = info;
  return {
    key: `${fh}_${fw}_${sh}_${sw}`,
    wgsl: `
  const WINDOW = vec2<i32>(${fh}, ${fw});
  const STRIDES = vec2<i32>(${sh}, ${sw});
  /** First and last window covering input position t along one axis (window f, stride s, pad p). */
  fn windowRange(t : i32, f : i32, s : i32, p : i32, count : i32) -> vec2<i32> {
    let u = t + p;
    let low = u - f + 1;
    var first = 0;
    if (low > 0) { first = (low + s - 1) / s; }
    return vec2<i32>(first, min(u / s, count - 1));
  }
  /** (image, row, column, channel unit) of this invocation, or x = -1 outside the tensor. */
  fn pixel() -> vec4<i32> {
    let c = i32(globalId.x);
    let col = i32(globalId.y);
    let imageRow = i32(globalId.z);
    if (c >= uniforms.channels || col >= uniforms.inW || imageRow >= uniforms.images * uniforms.inH) { return vec4<i32>(-1); }
    let image = imageRow / uniforms.inH;
    return vec4<i32>(image, imageRow - image * uniforms.inH, col, c);
  }
`,
  };
}

const pow2AtLeast = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/**
 * 64 invocations per workgroup over (channel unit, column, image·row), shaped to the tensor: as many channel
 * units as there are (up to 64), then columns, then rows. A fixed 8×8 left half of each workgroup idle on a
 * 4-wide map (the last transition's) and three quarters on 2 channel units.
 */
export function poolWorkgroup(channelUnits: number, width: number): [number, number, number] {
  const x = Math.min(64, pow2AtLeast(channelUnits));
  const y = Math.min(64 / x, pow2AtLeast(width));
  return [x, y, 64 / x / y];
}

/** Workgroups over (channel units, columns, images·rows) of a map `height`×`width` (the input's, or dy's). */
export function poolDispatch(
  info: tf.backend_util.Conv2DInfo, channelUnits: number, workgroup: [number, number, number], height = info.inHeight, width = info.inWidth,
): [number, number, number] {
  return [Math.ceil(channelUnits / workgroup[0]), Math.ceil(width / workgroup[1]), Math.ceil(info.batchSize * height / workgroup[2])];
}
