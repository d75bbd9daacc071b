/**
 * Training kernels for the TensorFlow.js `wasm` backend.
 *
 * tfjs-backend-wasm 4.22 cannot train a CNN: it has no Conv2DBackpropFilter,
 * and several of the backward kernels it does have are naive loops that run
 * 3-35x slower than the forward pass. The arithmetic here always runs in the
 * backend's own XNNPACK-backed kernels (BatchMatMul, Conv2D), called the way
 * the wasm backend composes its own kernels: kernelFunc({inputs, backend,
 * attrs}), intermediates released through backend.disposeData. Data
 * movement uses PadV2/Transpose where those are fast, and otherwise plain
 * loops and copies on the wasm heap (as the backend's own Slice and Concat
 * do) plus zero-copy views (see view()).
 *
 * Two facts about the wasm BatchMatMul drive the design (measured, see
 * scripts/bench-wasm-kernels.ts):
 *  - only `!transposeA && !transposeB && batch == 1` reaches XNNPACK; every
 *    other case is a scalar triple loop (~1.2 GFLOP/s);
 *  - XNNPACK re-packs the right operand B for every new B tensor, and that
 *    packing is slow once B outgrows the cache (≈9 ns/element for 12 MB vs
 *    ≈1.2 ns/element for 2 MB), while the left operand A is read in place.
 *    So the big, varying operand goes on the left, B is kept small or reused,
 *    and large reductions are split into cache-sized K-chunks.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

type TensorInfo = tf.TensorInfo;
type Shape4 = [number, number, number, number];

/** The parts of tfjs-backend-wasm's BackendWasm these kernels rely on. */
interface WasmTensorData {
  id: number;
  memoryOffset: number;
  refCount: number;
}
interface WasmBackendInternals {
  wasm: {
    HEAPU8: Uint8Array;
    tfjs: { disposeData(id: number): void };
  };
  dataIdMap: {
    get(dataId: object): WasmTensorData | undefined;
    delete(dataId: object): boolean;
  };
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  incRef(dataId: object): void;
}

const BACKEND = 'wasm';

/**
 * Kernels replaced by registerWasmFastOverrides(), keyed by name. Composite
 * kernels below call through this map first so that an override can never
 * recurse into itself.
 */
const originals = new Map<string, tf.KernelConfig>();

function kernelFunc(name: string): tf.KernelFunc {
  const cfg = originals.get(name) ?? tf.getKernel(name, BACKEND);
  if (cfg == null) {
    throw new Error(`wasm-kernels: the wasm backend has no '${name}' kernel`);
  }
  return cfg.kernelFunc;
}

function run(
  backend: WasmBackendInternals,
  name: string,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap = {},
): TensorInfo {
  const out = kernelFunc(name)({ inputs, backend, attrs });
  return Array.isArray(out) ? (out[0] as TensorInfo) : out;
}

function release(backend: WasmBackendInternals, ...infos: TensorInfo[]): void {
  for (const t of infos) backend.disposeData(t.dataId);
}

function reshape(backend: WasmBackendInternals, x: TensorInfo, shape: number[]): TensorInfo {
  return run(backend, 'Reshape', { x }, { shape });
}

function matMul(backend: WasmBackendInternals, a: TensorInfo, b: TensorInfo): TensorInfo {
  return run(backend, 'BatchMatMul', { a, b }, { transposeA: false, transposeB: false });
}

function dataOf(backend: WasmBackendInternals, t: TensorInfo): WasmTensorData {
  const d = backend.dataIdMap.get(t.dataId);
  if (d == null) throw new Error('wasm-kernels: tensor data is not on the wasm backend');
  return d;
}

/** Element offset of a float32 tensor in the wasm heap. */
function offsetOf(backend: WasmBackendInternals, t: TensorInfo): number {
  return dataOf(backend, t).memoryOffset >>> 2;
}

/**
 * A fresh float32 view of the whole heap. Must be re-taken after anything
 * that can allocate: growing wasm memory detaches earlier views.
 */
function heap(backend: WasmBackendInternals): Float32Array {
  return new Float32Array(backend.wasm.HEAPU8.buffer);
}

/**
 * Zero-copy tensor over a contiguous range of another tensor's memory. The
 * backend's makeOutput(shape, dtype, memoryOffset) registers foreign memory
 * without allocating; such a view must never reach backend.disposeData (that
 * would free() an interior pointer), so it is dropped with releaseView, which
 * unregisters it (running XNNPACK's disposal callbacks for any operator
 * cached on it) without freeing memory.
 */
function view(backend: WasmBackendInternals, base: TensorInfo, elemOffset: number, shape: number[]): TensorInfo {
  return backend.makeOutput(shape, 'float32', dataOf(backend, base).memoryOffset + 4 * elemOffset);
}

function releaseView(backend: WasmBackendInternals, v: TensorInfo): void {
  const d = dataOf(backend, v);
  backend.wasm.tfjs.disposeData(d.id);
  backend.dataIdMap.delete(v.dataId);
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function assertFloat32(kernel: string, ...infos: TensorInfo[]): void {
  for (const t of infos) {
    if (t.dtype !== 'float32') {
      throw new Error(`wasm-kernels: ${kernel} supports float32 only, got ${t.dtype}`);
    }
  }
}

/**
 * Above this many floats (4 MB) XNNPACK's packing of a right-hand operand
 * falls out of cache and becomes the bottleneck, so B is split along K.
 */
const PACK_LIMIT = 1 << 20;
/** Target size of one K-chunk of B, in floats (256 KB). */
const PACK_CHUNK = 1 << 16;

// ---------------------------------------------------------------------------
// Conv2DBackpropFilter
// ---------------------------------------------------------------------------

/**
 * Filter gradient of a 1×1 stride-1 unpadded convolution:
 * dW[ci,co] = Σ_p x[p,ci]·dy[p,co], i.e. xᵀ·dy with a huge reduction (M).
 *
 * x is transposed into chunk-major layout [nChunks, cin, Kc] (the wasm 2-D
 * Transpose is a naive loop, but on Kc-row chunks its writes stay in cache),
 * so each A-chunk is a contiguous zero-copy view; B-chunks are zero-copy
 * row-range views of dy sized so XNNPACK's packing stays in cache. Measured
 * on DenseNet-121 shapes this beats the mirror choice (transpose dy, pack x)
 * by 5-35%: A is read in place while B is packed, and packing a large B
 * costs more per element than the transpose.
 */
function filterGrad1x1(
  backend: WasmBackendInternals,
  x: TensorInfo,
  dy: TensorInfo,
  m: number,
  cin: number,
  cout: number,
  out: TensorInfo,
): void {
  const kc = m * cout <= PACK_LIMIT ? m : Math.max(256, Math.min(m, Math.floor(PACK_CHUNK / cout)));
  const nFull = Math.floor(m / kc);
  const rem = m - nFull * kc;

  const acc = new Accumulator(backend);
  const gemm = (a: TensorInfo, rowStart: number, rows: number): void => {
    const b = view(backend, dy, rowStart * cout, [rows, cout]);
    acc.add(matMul(backend, a, b));
    releaseView(backend, b);
  };

  if (nFull > 0) {
    const xv = view(backend, x, 0, [nFull, kc, cin]);
    const xt = run(backend, 'Transpose', { x: xv }, { perm: [0, 2, 1] });
    releaseView(backend, xv);
    for (let c = 0; c < nFull; c++) {
      const a = view(backend, xt, c * cin * kc, [cin, kc]);
      gemm(a, c * kc, kc);
      releaseView(backend, a);
    }
    release(backend, xt);
  }
  if (rem > 0) {
    const xv = view(backend, x, nFull * kc * cin, [rem, cin]);
    const xt = run(backend, 'Transpose', { x: xv }, { perm: [1, 0] });
    releaseView(backend, xv);
    gemm(xt, nFull * kc, rem);
    release(backend, xt);
  }
  acc.copyTo(out, 0, 0, cin * cout);
  acc.dispose();
}

/**
 * Running sum of equally shaped partial products, in the wasm Add kernel
 * (SIMD; a JS loop over the heap costs ~10% of a 256-row K-chunk's GEMM).
 */
class Accumulator {
  private sum: TensorInfo | null = null;

  constructor(private readonly backend: WasmBackendInternals) {}

  /** Takes ownership of p. */
  add(p: TensorInfo): void {
    if (this.sum == null) {
      this.sum = p;
      return;
    }
    const next = run(this.backend, 'Add', { a: this.sum, b: p });
    release(this.backend, this.sum, p);
    this.sum = next;
  }

  copyTo(dst: TensorInfo, dstOffset: number, srcOffset: number, length: number): void {
    if (this.sum == null) throw new Error('wasm-kernels: empty accumulation');
    const s = offsetOf(this.backend, this.sum) + srcOffset;
    heap(this.backend).copyWithin(offsetOf(this.backend, dst) + dstOffset, s, s + length);
  }

  dispose(): void {
    if (this.sum != null) release(this.backend, this.sum);
    this.sum = null;
  }
}

interface Tap {
  /** Element offset, inside the packed input, of this tap's A operand. */
  src: number;
  /** Element offset of this tap's [cin, cout] block in the filter gradient. */
  outOffset: number;
}

/**
 * Writes the zero-padded input, split into stride phases and channel-major,
 * into dst: for each phase (a, b) a block [cin + 1, N·Hq·Wq] holding
 * x_padded[n, hq·sh + a, wq·sw + b, c] at [c, (n·Hq + hq)·Wq + wq], and a
 * zero row c = cin. One pass in JS over heap memory: the wasm Transpose is a
 * naive element loop (and a per-element generic loop above rank 4) and
 * StridedSlice measured ~30 ns/element, so pad + phase-split + transpose as
 * kernels would cost three or more slower passes. Each source row (≤ a few
 * tens of KB) is read from cache while destination writes are sequential
 * runs of Wq floats.
 */
function packPhases(
  h: Float32Array,
  xOff: number,
  dstOff: number,
  g: { n: number; hIn: number; wIn: number; cin: number; top: number; left: number;
    sh: number; sw: number; pa: number; pb: number; hq: number; wq: number },
): void {
  const { n, hIn, wIn, cin, top, left, sh, sw, pa, pb, hq, wq } = g;
  const r = n * hq * wq;
  h.fill(0, dstOff, dstOff + pa * pb * (cin + 1) * r);
  for (let a = 0; a < pa; a++) {
    for (let b = 0; b < pb; b++) {
      const phaseBase = dstOff + (a * pb + b) * (cin + 1) * r;
      const wq0 = Math.max(0, Math.ceil((left - b) / sw));
      const wq1 = Math.min(wq, Math.floor((wIn - 1 + left - b) / sw) + 1);
      if (wq1 <= wq0) continue;
      const step = sw * cin;
      for (let img = 0; img < n; img++) {
        for (let row = 0; row < hq; row++) {
          const hi = row * sh + a - top;
          if (hi < 0 || hi >= hIn) continue;
          const srcRow = xOff + ((img * hIn + hi) * wIn + (wq0 * sw + b - left)) * cin;
          const dstRow = phaseBase + (img * hq + row) * wq;
          for (let c = 0; c < cin; c++) {
            let s = srcRow + c;
            const d = dstRow + c * r;
            for (let col = wq0; col < wq1; col++) {
              h[d + col] = h[s] as number;
              s += step;
            }
          }
        }
      }
    }
  }
}

/**
 * Core of the k×k filter gradient.
 *
 * On a grid [N, Hq, Wq] flattened to R positions, tap (kh, kw) of stride
 * phase p pairs output position q with phase-input position q + shift,
 * shift = (kh div sh)·Wq + (kw div sw). With dy zero-extended onto the same
 * grid (dyg, shared by all phases), every tap is one plain matmul
 *   dW_tap = xpT_p[:, shift : shift + R] · dyg          ([cin,R]·[R,cout])
 * whose A operand is simply the packed input starting at src = p's block +
 * shift. Read as a [cin, R] matrix that window wraps into the next channel's
 * row (or the zero row), but exactly those columns meet dyg's zero rows, so
 * the product is exact. When cin is large each tap's A is a zero-copy view
 * and B = dyg is packed by XNNPACK once and reused by every tap. When cin is
 * small, taps are stacked into the rows of one A (one contiguous copy per
 * tap and channel) to give XNNPACK a tall left operand; when B is large, the
 * reduction is split into K-chunks so packing stays in cache.
 */
function shiftedTapGemms(
  backend: WasmBackendInternals,
  xpT: TensorInfo,
  cin: number,
  r: number,
  dyg: TensorInfo,
  cout: number,
  taps: Tap[],
  out: TensorInfo,
): void {
  const blk = cin * cout;
  const stacks = cin >= 64 ? taps.length : Math.ceil((taps.length * cin) / 192);
  const group = Math.ceil(taps.length / stacks);
  const chunked = group > 1 || r * cout > PACK_LIMIT;

  if (!chunked) {
    // XNNPACK caches the packed B per tensor id, without its shape. dyg may
    // share dy's id, so a private view keeps that cache entry ours and
    // frees it as soon as the last tap is done.
    const b = view(backend, dyg, 0, [r, cout]);
    for (const tap of taps) {
      const a = view(backend, xpT, tap.src, [cin, r]);
      const p = matMul(backend, a, b);
      releaseView(backend, a);
      const h = heap(backend);
      h.copyWithin(offsetOf(backend, out) + tap.outOffset, offsetOf(backend, p), offsetOf(backend, p) + blk);
      release(backend, p);
    }
    releaseView(backend, b);
    return;
  }

  const kc = Math.max(256, Math.min(r, Math.floor(PACK_CHUNK / cout)));
  const chunks: { start: number; len: number; b: TensorInfo }[] = [];
  for (let start = 0; start < r; start += kc) {
    const len = Math.min(kc, r - start);
    chunks.push({ start, len, b: view(backend, dyg, start * cout, [len, cout]) });
  }

  for (let t0 = 0; t0 < taps.length; t0 += group) {
    const stack = taps.slice(t0, t0 + group);
    const rows = stack.length * cin;
    const acc = new Accumulator(backend);
    for (const chunk of chunks) {
      const a = backend.makeOutput([rows, chunk.len], 'float32');
      const h = heap(backend);
      const aOff = offsetOf(backend, a);
      const xOff = offsetOf(backend, xpT);
      for (let t = 0; t < stack.length; t++) {
        const src0 = xOff + (stack[t] as Tap).src + chunk.start;
        for (let ci = 0; ci < cin; ci++) {
          const src = src0 + ci * r;
          h.copyWithin(aOff + (t * cin + ci) * chunk.len, src, src + chunk.len);
        }
      }
      acc.add(matMul(backend, a, chunk.b));
      release(backend, a);
    }
    for (let t = 0; t < stack.length; t++) acc.copyTo(out, (stack[t] as Tap).outOffset, t * blk, blk);
    acc.dispose();
  }
  for (const chunk of chunks) releaseView(backend, chunk.b);
}

function conv2DBackpropFilter(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: {};
  attrs?: tf.NamedAttrMap;
}): TensorInfo {
  const backend = args.backend as WasmBackendInternals;
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } =
    args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  assertFloat32('Conv2DBackpropFilter', x, dy);
  const fmt = tf.backend_util.convertConv2DDataFormat(dataFormat);
  if (fmt !== 'channelsLast') {
    throw new Error(`wasm-kernels: Conv2DBackpropFilter supports NHWC only, got ${dataFormat}`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as Shape4, filterShape, strides, 1, pad, dimRoundingMode, false, fmt);
  const {
    batchSize: n, inHeight: hIn, inWidth: wIn, inChannels: cin, outHeight: oh, outWidth: ow,
    outChannels: cout, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, padInfo,
  } = info;

  const out = backend.makeOutput([kh, kw, cin, cout], 'float32');
  if (n * oh * ow === 0 || n * hIn * wIn === 0 || cin * cout === 0) {
    const o = offsetOf(backend, out);
    heap(backend).fill(0, o, o + kh * kw * cin * cout);
    return out;
  }

  const noPad = padInfo.top === 0 && padInfo.left === 0 && padInfo.bottom === 0 && padInfo.right === 0;
  if (kh === 1 && kw === 1 && sh === 1 && sw === 1 && noPad && oh === hIn && ow === wIn) {
    filterGrad1x1(backend, x, dy, n * hIn * wIn, cin, cout, out);
    return out;
  }

  // Phase grid: phase (a, b) holds padded rows a, a+sh, ... Hq rows cover
  // every row any tap of any phase reads, (oh-1)·sh + kh - 1 at most.
  const hq = Math.ceil(((oh - 1) * sh + kh) / sh);
  const wq = Math.ceil(((ow - 1) * sw + kw) / sw);
  const pa = Math.min(sh, kh);
  const pb = Math.min(sw, kw);
  const r = n * hq * wq;

  const padBottom = hq - hIn - padInfo.top;
  const padRight = wq - wIn - padInfo.left;
  let xpT: TensorInfo;
  if (sh === 1 && sw === 1 && padBottom >= 0 && padRight >= 0) {
    // Stride 1: PadV2 (adding the zero channel) + a 2-D Transpose measured
    // faster than the JS packer, whose strided reads cost more at large cin.
    const xp = run(backend, 'PadV2', { x }, {
      paddings: [[0, 0], [padInfo.top, padBottom], [padInfo.left, padRight], [0, 1]], constantValue: 0,
    });
    const x2 = reshape(backend, xp, [r, cin + 1]);
    xpT = run(backend, 'Transpose', { x: x2 }, { perm: [1, 0] });
    release(backend, xp, x2);
  } else {
    xpT = backend.makeOutput([pa * pb * (cin + 1) * r], 'float32');
    packPhases(heap(backend), offsetOf(backend, x), offsetOf(backend, xpT), {
      n, hIn, wIn, cin, top: padInfo.top, left: padInfo.left, sh, sw, pa, pb, hq, wq,
    });
  }

  const dyg4 = hq === oh && wq === ow
    ? reshape(backend, dy, dy.shape)
    : run(backend, 'PadV2', { x: dy }, {
      paddings: [[0, 0], [0, hq - oh], [0, wq - ow], [0, 0]], constantValue: 0,
    });
  const dyg = reshape(backend, dyg4, [r, cout]);
  release(backend, dyg4);

  const taps: Tap[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const phase = (i % sh) * pb + (j % sw);
      taps.push({
        src: phase * (cin + 1) * r + Math.floor(i / sh) * wq + Math.floor(j / sw),
        outOffset: (i * kw + j) * cin * cout,
      });
    }
  }
  shiftedTapGemms(backend, xpT, cin, r, dyg, cout, taps, out);
  release(backend, xpT, dyg);
  return out;
}

// ---------------------------------------------------------------------------
// Overrides of slow existing wasm kernels (initBackend('wasm') registers them)
// ---------------------------------------------------------------------------

/**
 * The wasm Conv2DBackpropInput is a direct loop (~2.3 GFLOP/s). For stride 1
 * dx is the "full" correlation of dy with the spatially flipped, in/out-
 * swapped filter, which XNNPACK's Conv2D runs at forward speed. Stride s is
 * reduced to stride 1 by interleaving s-1 zeros into dy (a 6-D PadV2 plus
 * reshapes), costing s² more multiply-adds but still several times faster.
 */
function conv2DBackpropInputFast(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: {};
  attrs?: tf.NamedAttrMap;
}): TensorInfo {
  const backend = args.backend as WasmBackendInternals;
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const fallback = () => run(backend, 'Conv2DBackpropInput', args.inputs, args.attrs);
  if (dy.dtype !== 'float32' || filter.dtype !== 'float32') return fallback();
  const fmt = tf.backend_util.convertConv2DDataFormat(attrs.dataFormat);
  if (fmt !== 'channelsLast') return fallback();
  const info = tf.backend_util.computeConv2DInfo(
    attrs.inputShape, filter.shape as Shape4, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, fmt);
  const {
    batchSize: n, inHeight: hIn, inWidth: wIn, inChannels: cin, outHeight: oh, outWidth: ow,
    outChannels: cout, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, padInfo,
  } = info;
  const padT = kh - 1 - padInfo.top;
  const padL = kw - 1 - padInfo.left;
  if (padT < 0 || padL < 0 || n * hIn * wIn * cin === 0 || oh * ow * cout === 0) return fallback();

  // W'[i, j, co, ci] = W[kh-1-i, kw-1-j, ci, co], written directly: the wasm
  // Reverse kernel alone costs ~1 ms even on a 37K-element filter.
  const wT = backend.makeOutput([kh, kw, cout, cin], 'float32');
  {
    const h = heap(backend);
    const src = offsetOf(backend, filter);
    const dst = offsetOf(backend, wT);
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const s0 = src + ((kh - 1 - i) * kw + (kw - 1 - j)) * cin * cout;
        const d0 = dst + (i * kw + j) * cout * cin;
        for (let ci = 0; ci < cin; ci++) {
          for (let co = 0; co < cout; co++) h[d0 + co * cin + ci] = h[s0 + ci * cout + co] as number;
        }
      }
    }
  }

  let src: TensorInfo;
  let lenH = oh;
  let lenW = ow;
  if (sh === 1 && sw === 1) {
    src = reshape(backend, dy, dy.shape);
  } else {
    const dy6 = reshape(backend, dy, [n, oh, 1, ow, 1, cout]);
    const padded = run(backend, 'PadV2', { x: dy6 }, {
      paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]], constantValue: 0,
    });
    release(backend, dy6);
    lenH = oh * sh;
    lenW = ow * sw;
    src = reshape(backend, padded, [n, lenH, lenW, cout]);
    release(backend, padded);
  }
  // Bottom/right padding that makes the correlation produce exactly hIn×wIn;
  // when negative, trailing rows of the dilated dy are never read: crop them.
  let padBot = hIn + kh - 1 - padT - lenH;
  let padRight = wIn + kw - 1 - padL - lenW;
  if (padBot < 0 || padRight < 0) {
    const cropH = lenH + Math.min(0, padBot);
    const cropW = lenW + Math.min(0, padRight);
    const cropped = run(backend, 'Slice', { x: src }, { begin: [0, 0, 0, 0], size: [n, cropH, cropW, cout] });
    release(backend, src);
    src = cropped;
    padBot = Math.max(0, padBot);
    padRight = Math.max(0, padRight);
  }
  const dx = run(backend, 'Conv2D', { x: src, filter: wT }, {
    strides: [1, 1],
    pad: [[0, 0], [padT, padBot], [padL, padRight], [0, 0]],
    dataFormat: 'NHWC',
    dilations: [1, 1],
  });
  release(backend, src, wT);
  return dx;
}

/**
 * MaxPoolGrad: the wasm kernel runs ~35x slower than MaxPool. This pass
 * re-finds each window's first maximum (strictly greater, like the cpu
 * backend) channel-vectorised over the contiguous NHWC channel axis, and
 * routes dy there.
 */
function maxPoolGradFast(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: {};
  attrs?: tf.NamedAttrMap;
}): TensorInfo {
  const backend = args.backend as WasmBackendInternals;
  const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as tf.MaxPoolGradAttrs;
  if (dy.dtype !== 'float32' || input.dtype !== 'float32') {
    return run(backend, 'MaxPoolGrad', args.inputs, args.attrs);
  }
  const info = tf.backend_util.computePool2DInfo(
    input.shape as Shape4, filterSize, strides, 1, pad, dimRoundingMode);
  const { batchSize: n, inHeight: hIn, inWidth: wIn, inChannels: c, outHeight: oh, outWidth: ow,
    strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw, padInfo } = info;

  const dx = backend.makeOutput(input.shape, 'float32');
  const h = heap(backend);
  const xOff = offsetOf(backend, input);
  const dyOff = offsetOf(backend, dy);
  const dxOff = offsetOf(backend, dx);
  h.fill(0, dxOff, dxOff + n * hIn * wIn * c);
  const best = new Float32Array(c);
  const where = new Int32Array(c);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      const r0 = y * sh - padInfo.top;
      const rLo = Math.max(0, r0);
      const rHi = Math.min(hIn, r0 + fh);
      for (let xo = 0; xo < ow; xo++) {
        const c0 = xo * sw - padInfo.left;
        const cLo = Math.max(0, c0);
        const cHi = Math.min(wIn, c0 + fw);
        best.fill(Number.NEGATIVE_INFINITY);
        where.fill(-1);
        for (let rr = rLo; rr < rHi; rr++) {
          for (let cc = cLo; cc < cHi; cc++) {
            const base = ((b * hIn + rr) * wIn + cc) * c;
            for (let d = 0; d < c; d++) {
              const v = h[xOff + base + d] as number;
              if (v > (best[d] as number)) {
                best[d] = v;
                where[d] = base + d;
              }
            }
          }
        }
        const dyBase = dyOff + ((b * oh + y) * ow + xo) * c;
        for (let d = 0; d < c; d++) {
          const w = where[d] as number;
          if (w >= 0) h[dxOff + w] = (h[dxOff + w] as number) + (h[dyBase + d] as number);
        }
      }
    }
  }
  return dx;
}

/**
 * AvgPoolGrad: same semantics as the cpu backend (every window position
 * weighs 1/(fh·fw), padding included), scattered channel-vectorised.
 */
function avgPoolGradFast(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: {};
  attrs?: tf.NamedAttrMap;
}): TensorInfo {
  const backend = args.backend as WasmBackendInternals;
  const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad } = args.attrs as unknown as tf.AvgPoolGradAttrs;
  if (dy.dtype !== 'float32' || input.dtype !== 'float32') {
    return run(backend, 'AvgPoolGrad', args.inputs, args.attrs);
  }
  const info = tf.backend_util.computePool2DInfo(input.shape as Shape4, filterSize, strides, 1, pad);
  const { batchSize: n, inHeight: hIn, inWidth: wIn, inChannels: c, outHeight: oh, outWidth: ow,
    strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw, padInfo } = info;
  const mult = 1 / (fh * fw);

  const dx = backend.makeOutput(input.shape, 'float32');
  const h = heap(backend);
  const dyOff = offsetOf(backend, dy);
  const dxOff = offsetOf(backend, dx);
  h.fill(0, dxOff, dxOff + n * hIn * wIn * c);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      const r0 = y * sh - padInfo.top;
      const rLo = Math.max(0, r0);
      const rHi = Math.min(hIn, r0 + fh);
      for (let xo = 0; xo < ow; xo++) {
        const c0 = xo * sw - padInfo.left;
        const cLo = Math.max(0, c0);
        const cHi = Math.min(wIn, c0 + fw);
        const dyBase = dyOff + ((b * oh + y) * ow + xo) * c;
        for (let rr = rLo; rr < rHi; rr++) {
          for (let cc = cLo; cc < cHi; cc++) {
            const base = dxOff + ((b * hIn + rr) * wIn + cc) * c;
            for (let d = 0; d < c; d++) {
              h[base + d] = (h[base + d] as number) + (h[dyBase + d] as number) * mult;
            }
          }
        }
      }
    }
  }
  return dx;
}

/**
 * BatchMatMul: only the untransposed, batch-1 case reaches XNNPACK. Others
 * are rewritten into it: explicit Transpose for transposed operands (O(n),
 * versus a ~12x slower scalar product), and a loop over batch entries with
 * zero-copy views for batched products. Tiny products keep the original
 * path, where per-call overhead would dominate.
 */
function batchMatMulFast(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: {};
  attrs?: tf.NamedAttrMap;
}): TensorInfo {
  const backend = args.backend as WasmBackendInternals;
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
  const fallback = () => run(backend, 'BatchMatMul', args.inputs, args.attrs);
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return fallback();
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return fallback();
  const m = (transposeA ? a.shape[ra - 1] : a.shape[ra - 2]) as number;
  const k = (transposeA ? a.shape[ra - 2] : a.shape[ra - 1]) as number;
  const kB = (transposeB ? b.shape[rb - 1] : b.shape[rb - 2]) as number;
  const nn = (transposeB ? b.shape[rb - 2] : b.shape[rb - 1]) as number;
  const batchA = sizeOf(a.shape.slice(0, -2));
  const batchB = sizeOf(b.shape.slice(0, -2));
  const batch = Math.max(batchA, batchB);
  const simple = !transposeA && !transposeB && batch === 1;
  if (simple || k !== kB || m * k * nn < 32768 || m * nn === 0 || k === 0 ||
      (batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) {
    return fallback();
  }
  const outShape = [
    ...tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)), m, nn,
  ];

  const a3 = reshape(backend, a, [batchA, a.shape[ra - 2] as number, a.shape[ra - 1] as number]);
  const b3 = reshape(backend, b, [batchB, b.shape[rb - 2] as number, b.shape[rb - 1] as number]);
  const aN = transposeA ? run(backend, 'Transpose', { x: a3 }, { perm: [0, 2, 1] }) : a3;
  const bN = transposeB ? run(backend, 'Transpose', { x: b3 }, { perm: [0, 2, 1] }) : b3;
  if (transposeA) release(backend, a3);
  if (transposeB) release(backend, b3);

  let result: TensorInfo;
  if (batch === 1) {
    const a2 = reshape(backend, aN, [m, k]);
    const b2 = reshape(backend, bN, [k, nn]);
    const p = matMul(backend, a2, b2);
    result = reshape(backend, p, outShape);
    release(backend, p, a2, b2, aN, bN);
  } else {
    result = backend.makeOutput(outShape, 'float32');
    for (let i = 0; i < batch; i++) {
      const av = view(backend, aN, (batchA === 1 ? 0 : i) * m * k, [m, k]);
      const bv = view(backend, bN, (batchB === 1 ? 0 : i) * k * nn, [k, nn]);
      const p = matMul(backend, av, bv);
      const h = heap(backend);
      const po = offsetOf(backend, p);
      h.copyWithin(offsetOf(backend, result) + i * m * nn, po, po + m * nn);
      release(backend, p);
      releaseView(backend, av);
      releaseView(backend, bv);
    }
    release(backend, aN, bN);
  }
  return result;
}

// ---------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------

const trainingKernels: Record<string, tf.KernelFunc> = {
  Conv2DBackpropFilter: conv2DBackpropFilter,
};

/**
 * Identity sharing its input's buffer, as the cpu backend's does. tfjs tensors are immutable, and the tape
 * clones (Identity) every tensor it saves for backprop: stock wasm copies each one, which doubles the memory
 * of everything a training step keeps.
 */
function identityAliasing(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo | TensorInfo[] {
  const x = args.inputs.x as TensorInfo;
  if (x.dtype === 'string') return kernelFunc('Identity')(args as Parameters<tf.KernelFunc>[0]) as TensorInfo;
  (args.backend as WasmBackendInternals).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

const fastOverrides: Record<string, tf.KernelFunc> = {
  Identity: identityAliasing as tf.KernelFunc,
  Conv2DBackpropInput: conv2DBackpropInputFast,
  MaxPoolGrad: maxPoolGradFast,
  AvgPoolGrad: avgPoolGradFast,
  BatchMatMul: batchMatMulFast,
};

/**
 * Registers, for the 'wasm' backend, training kernels it lacks
 * (Conv2DBackpropFilter). Kernels wasm already has are left alone. Returns
 * the names registered by this call; calling again registers nothing.
 */
export function registerWasmTrainingKernels(): string[] {
  const registered: string[] = [];
  for (const [kernelName, fn] of Object.entries(trainingKernels)) {
    if (tf.getKernel(kernelName, BACKEND) != null) continue;
    tf.registerKernel({ kernelName, backendName: BACKEND, kernelFunc: fn });
    registered.push(kernelName);
  }
  return registered;
}

/**
 * Replaces wasm kernels that exist but are far slower than the
 * forward pass (Conv2DBackpropInput, MaxPoolGrad, AvgPoolGrad, transposed or
 * batched BatchMatMul) with faster compositions. The originals are kept,
 * used for cases the fast versions do not cover, and restored by
 * unregisterWasmFastOverrides(). Idempotent; returns the names replaced by
 * this call.
 */
export function registerWasmFastOverrides(): string[] {
  const replaced: string[] = [];
  for (const [kernelName, fn] of Object.entries(fastOverrides)) {
    const current = tf.getKernel(kernelName, BACKEND);
    if (current == null || current.kernelFunc === fn) continue;
    originals.set(kernelName, current);
    tf.unregisterKernel(kernelName, BACKEND);
    // The original setupFunc stays attached: it binds the C++ entry point the
    // fallback path calls, and must run again if the backend is re-created.
    const cfg: tf.KernelConfig = { kernelName, backendName: BACKEND, kernelFunc: fn };
    if (current.setupFunc != null) cfg.setupFunc = current.setupFunc;
    if (current.disposeFunc != null) cfg.disposeFunc = current.disposeFunc;
    tf.registerKernel(cfg);
    replaced.push(kernelName);
  }
  return replaced;
}

/** Restores the kernels replaced by registerWasmFastOverrides(). */
export function unregisterWasmFastOverrides(): string[] {
  const restored: string[] = [];
  for (const [kernelName, original] of originals) {
    const current = tf.getKernel(kernelName, BACKEND);
    if (current != null && current.kernelFunc === fastOverrides[kernelName]) {
      tf.unregisterKernel(kernelName, BACKEND);
      tf.registerKernel(original);
      restored.push(kernelName);
    }
    originals.delete(kernelName);
  }
  return restored;
}

/**
 * aᵀ·b as the filter gradient of a 1×1 convolution over K pixels, so it runs
 * the chunked path of conv2DBackpropFilter (filterGrad1x1), which beats
 * transpose + matMul by avoiding one cache-hostile full-size transpose.
 */
const matMulTransposeAViaFilterGrad = tf.customGrad<tf.Tensor2D>((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [a, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  const [k, m] = a.shape;
  const n = b.shape[1];
  const value = tf.tidy(() => tf.reshape(
    tf.engine().runKernel('Conv2DBackpropFilter',
      { x: tf.reshape(a, [1, 1, k, m]), dy: tf.reshape(b, [1, 1, k, n]) },
      { strides: 1, pad: 'valid', dataFormat: 'NHWC', filterShape: [1, 1, m, n] }) as tf.Tensor,
    [m, n])) as tf.Tensor2D;
  save([a, b]);
  return {
    value,
    // d(aᵀb)/da = b·dyᵀ, d/db = a·dy; dy [m, n] is small, so transposing it
    // is cheaper than a transposeB product (which leaves XNNPACK on wasm).
    gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
      return [tf.matMul(sb, tf.transpose(dy)), tf.matMul(sa, dy)];
    },
  };
});

/**
 * aᵀ·b for a [K, M] and b [K, N] (e.g. a 1×1 convolution's weight gradient
 * from flattened activations and output gradients). On wasm, transposeA
 * makes BatchMatMul fall off XNNPACK onto a ~12x slower scalar loop; with
 * registerWasmTrainingKernels() done this runs the chunked 1×1 filter-
 * gradient path, otherwise an explicit transpose plus a plain matMul. On
 * other backends it is tf.matMul(a, b, true, false). Differentiable.
 */
export function matMulTransposeAFast(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  if (tf.getBackend() !== BACKEND) return tf.matMul(a, b, true, false);
  if (a.rank !== 2 || b.rank !== 2 || a.shape[0] !== b.shape[0] || a.dtype !== 'float32' || b.dtype !== 'float32') {
    return tf.matMul(a, b, true, false);
  }
  if (tf.getKernel('Conv2DBackpropFilter', BACKEND)?.kernelFunc === conv2DBackpropFilter && a.shape[0] > 0) {
    return matMulTransposeAViaFilterGrad(a, b);
  }
  return tf.tidy(() => tf.matMul(tf.transpose(a), b));
}
