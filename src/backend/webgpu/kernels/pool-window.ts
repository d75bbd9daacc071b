/**
 * Shared by the pooling gradients: which pooling windows cover an input position, as WGSL. A window w
 * (of size f, stride s, leading pad p) covers input row t when w·s − p ≤ t < w·s − p + f, so for
 * u = t + p: ⌈(u − f + 1)/s⌉ ≤ w ≤ ⌊u/s⌋, clipped to the output. Integer maths only (no float division).
 */
import type * as tf from '@tensorflow/tfjs';
import type { Uniform } from './program.js';

export const POOL_UNIFORMS = 'inH : i32, inW : i32, outH : i32, outW : i32, channels : i32, window : vec2<i32>, strides : vec2<i32>, pads : vec2<i32>,';

export function poolUniforms(info: tf.backend_util.Conv2DInfo, channelUnits: number): Uniform[] {
  return [
    { type: 'int32', data: [info.inHeight] }, { type: 'int32', data: [info.inWidth] },
    { type: 'int32', data: [info.outHeight] }, { type: 'int32', data: [info.outWidth] },
    { type: 'int32', data: [channelUnits] },
    { type: 'int32', data: [info.effectiveFilterHeight, info.effectiveFilterWidth] },
    { type: 'int32', data: [info.strideHeight, info.strideWidth] },
    { type: 'int32', data: [info.padInfo.top, info.padInfo.left] },
  ];
}

/** WGSL: `first` and `last` window index covering input position `t` along one axis. */
export const WINDOW_RANGE = `
  fn windowRange(t : i32, f : i32, s : i32, p : i32, count : i32) -> vec2<i32> {
    let u = t + p;
    let low = u - f + 1;
    var first = 0;
    if (low > 0) { first = (low + s - 1) / s; }
    return vec2<i32>(first, min(u / s, count - 1));
  }
  /** (image, row, column, channel unit) of a flat index into an [N, H, W, channels] tensor. */
  fn pixelOf(index : i32, h : i32, w : i32, channels : i32) -> vec4<i32> {
    let c = index % channels;
    let p = index / channels;
    let col = p % w;
    let q = p / w;
    return vec4<i32>(q / h, q % h, col, c);
  }
`;
