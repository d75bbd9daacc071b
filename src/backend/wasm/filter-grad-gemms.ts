/**
 * The matrix products behind the wasm Conv2DBackpropFilter: the 1×1 case as one long reduction, and the
 * k×k case as one product per filter tap over a shared, shifted input layout. Two routes: the project's own
 * GEMM (gemm/: reads x and dy in place as xᵀ·dy, fused multiply-adds where relaxed SIMD exists, K-blocked
 * sums) and XNNPACK's BatchMatMul (needs xᵀ materialised and re-packs B per call).
 */
import { Accumulator } from './accumulator.js';
import { wasmGemm, type GemmOperands } from './gemm/gemm.js';
import {
  byteOffsetOf, heap, matMul, offsetOf, PACK_CHUNK, PACK_LIMIT, release, releaseView, transpose, view,
  type TensorInfo, type WasmBackendInternals, zeroFill,
} from './internals.js';

/**
 * Filter gradient of a 1×1 stride-1 unpadded convolution on the own GEMM: dW = xᵀ·dy with x [m, cin] and
 * dy [m, cout] read in place (x as a [K, M] operand: no transpose, no copy beyond the GEMM's packing).
 */
export function filterGrad1x1Gemm(
  backend: WasmBackendInternals,
  x: TensorInfo,
  dy: TensorInfo,
  m: number,
  cin: number,
  cout: number,
  out: TensorInfo,
): void {
  zeroFill(backend, out, cin * cout);
  wasmGemm(backend.wasm, [{
    a: byteOffsetOf(backend, x), sk: 4 * cin, sm: 4, b: byteOffsetOf(backend, dy), ldb: 4 * cout,
    c: byteOffsetOf(backend, out), ldc: 4 * cout, m: cin, n: cout, k: m,
  }]);
}

/**
 * The k×k stride-1 filter gradient on the own GEMM. xp is the input zero-padded onto the grid [N, Hq, Wq]
 * (NHWC, R = N·Hq·Wq rows of cin) plus at least one more grid image of zeros; dyg is dy zero-extended onto
 * the same grid [R, cout]. Tap t at grid shift s_t pairs row q of dyg with row q + s_t of xp, so
 *   dW_t = xp[s_t : s_t + R, :]ᵀ · dyg,
 * a [K, M] operand read in place at a row offset: rows that wrap into the next image (or the extra one) meet
 * dyg's zero rows, as in shiftedTapGemms.
 */
export function shiftedTapGemmsOwn(
  backend: WasmBackendInternals,
  xp: TensorInfo,
  cin: number,
  r: number,
  dyg: TensorInfo,
  cout: number,
  taps: { shift: number; outOffset: number }[],
  out: TensorInfo,
): void {
  zeroFill(backend, out, taps.length * cin * cout);
  const base = byteOffsetOf(backend, xp);
  const ops: GemmOperands[] = taps.map((tap) => ({
    a: base + 4 * tap.shift * cin, sk: 4 * cin, sm: 4, b: byteOffsetOf(backend, dyg), ldb: 4 * cout,
    c: byteOffsetOf(backend, out) + 4 * tap.outOffset, ldc: 4 * cout, m: cin, n: cout, k: r,
  }));
  wasmGemm(backend.wasm, ops);
}

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
export function filterGrad1x1(
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
    const xt = transpose(backend, xv, [0, 2, 1]);
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
    const xt = transpose(backend, xv, [1, 0]);
    releaseView(backend, xv);
    gemm(xt, nFull * kc, rem);
    release(backend, xt);
  }
  acc.copyTo(out, 0, 0, cin * cout);
  acc.dispose();
}

export interface Tap {
  /** Element offset, inside the packed input, of this tap's A operand. */
  src: number;
  /** Element offset of this tap's [cin, cout] block in the filter gradient. */
  outOffset: number;
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
export function shiftedTapGemms(
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

