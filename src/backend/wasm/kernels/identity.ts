/** An override of the wasm Identity that aliases, as the cpu backend's does. */
import * as tf from '@tensorflow/tfjs';
import { originalKernelFunc, wasmKernel, type TensorInfo, type WasmKernelArgs } from '../internals.js';

/**
 * Identity sharing its input's buffer, as the cpu backend's does. tfjs tensors are immutable, and the tape
 * clones (Identity) every tensor it saves for backprop: stock wasm copies each one, which doubles the memory
 * of everything a training step keeps.
 */
function identityAliasing(args: WasmKernelArgs<tf.IdentityInputs, tf.NamedAttrMap>): TensorInfo | TensorInfo[] {
  const { x } = args.inputs;
  // Strings do not live on the wasm heap: the stock kernel handles them.
  if (x.dtype === 'string') return originalKernelFunc(tf.Identity)(args);
  args.backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** Identity for 'wasm' that shares its input's buffer. */
export const identityAliasingConfig = wasmKernel(tf.Identity, identityAliasing);

