/**
 * WebAssembly text of the project's float32 GEMM (src/backend/wasm/gemm/), in two builds that differ only in
 * the multiply-add of the micro-kernel: 'relaxed' (f32x4.relaxed_madd, one fused multiply-add on x86 with FMA)
 * and 'plain' (f32x4.mul then f32x4.add, for engines without relaxed SIMD). Generated, not hand-written,
 * because the micro-kernel is an unrolled MR×NR register tile; assembled by scripts/wasm-source.ts.
 *
 * The product: C[m, n] += Σ_k A(k, m)·B(k, n), where A(k, m) is the float32 at a + k·sk + m·sm (bytes), so A
 * can be read as [K, M] (filter gradients: xᵀ·dy, sm = 4) or [M, K] (a forward 1×1 conv, sk = 4); B is [K, N]
 * with rows ldb bytes apart, and C is [M, N] with rows ldc bytes apart, accumulated into (the caller zeroes it).
 *
 * GotoBLAS layout: K in blocks of kc, M in blocks of mc; per K-block, B is packed into NR-wide panels
 * [⌈N/NR⌉][kc][NR] and per (K, M)-block A into MR-wide panels [⌈mc/MR⌉][kc][MR], zero-padded, so the
 * micro-kernel reads both operands contiguously, B's panel from L1 and A's from L2. The micro-kernel keeps
 * MR×NR sums in MR·NR/4 registers over one K-block, then adds them to C: each C element is a sum of ⌈K/kc⌉
 * block partials of ≤ kc terms, not one chain of K terms — more exact than a sequential sum, at no cost.
 */

export type GemmVariant = 'relaxed' | 'plain';

/**
 * Register tile: MR rows (A values broadcast) × NR columns (NR/4 vectors of B): 4×8 is 8 accumulators, 2 B
 * vectors and a broadcast in V8's 16 xmm registers. Measured (CPU time, K = 12544, M = 256, N = 128): 4×8
 * 43 GFLOP/s relaxed / 38 plain; 6×8 35 / 23 and a 2× unrolled k loop 25 / 29 (spills).
 */
export const GEMM_MR = 4;
export const GEMM_NR = 8;

const V = GEMM_NR / 4;

function madd(variant: GemmVariant, a: string, b: string, c: string): string {
  return variant === 'relaxed'
    ? `(f32x4.relaxed_madd ${a} ${b} ${c})`
    : `(f32x4.add (f32x4.mul ${a} ${b}) ${c})`;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** $tile: one MR×NR block of C += (packed A panel)ᵀ·(packed B panel) over k steps. */
function tile(variant: GemmVariant): string {
  const accs = range(GEMM_MR).flatMap((r) => range(V).map((j) => `$c${r}_${j}`));
  const step = range(V).map((j) => `      (local.set $b${j} (v128.load offset=${16 * j} (local.get $pb)))`).concat(
    range(GEMM_MR).flatMap((r) => [
      `      (local.set $a (v128.load32_splat offset=${4 * r} (local.get $pa)))`,
      ...range(V).map((j) => `      (local.set $c${r}_${j} ${madd(variant, '(local.get $a)', `(local.get $b${j})`, `(local.get $c${r}_${j})`)})`),
    ]));
  const fullStore = range(GEMM_MR).flatMap((r) => [
    ...range(V).map((j) => `        (v128.store offset=${16 * j} (local.get $row) (f32x4.add (v128.load offset=${16 * j} (local.get $row)) (local.get $c${r}_${j})))`),
    `        (local.set $row (i32.add (local.get $row) (local.get $ldc)))`,
  ]);
  const spill = range(GEMM_MR).flatMap((r) => range(V).map((j) =>
    `        (v128.store offset=${(r * GEMM_NR + 4 * j) * 4} (local.get $tmp) (local.get $c${r}_${j}))`));
  return `
  ;; C[0:rows, 0:cols] (rows ≤ ${GEMM_MR}, cols ≤ ${GEMM_NR}, rows ldc bytes apart) += Σ over k steps of the packed panels.
  (func $tile (param $pa i32) (param $pb i32) (param $k i32) (param $c i32) (param $ldc i32) (param $rows i32) (param $cols i32) (param $tmp i32)
    (local $a v128) ${range(V).map((j) => `(local $b${j} v128)`).join(' ')}
    ${accs.map((c) => `(local ${c} v128)`).join(' ')}
    (local $row i32) (local $r i32) (local $j i32) (local $p i32)
    (block $kDone (loop $kLoop
      (br_if $kDone (i32.eqz (local.get $k)))
${step.join('\n')}
      (local.set $pa (i32.add (local.get $pa) (i32.const ${4 * GEMM_MR})))
      (local.set $pb (i32.add (local.get $pb) (i32.const ${4 * GEMM_NR})))
      (local.set $k (i32.sub (local.get $k) (i32.const 1)))
      (br $kLoop)))
    (local.set $row (local.get $c))
    (if (i32.and (i32.eq (local.get $rows) (i32.const ${GEMM_MR})) (i32.eq (local.get $cols) (i32.const ${GEMM_NR})))
      (then
${fullStore.join('\n')}
        (return)))
    ;; an edge tile: through scratch, element by element
${spill.join('\n')}
    (local.set $r (i32.const 0))
    (block $rDone (loop $rLoop
      (br_if $rDone (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $j (i32.const 0))
      (block $jDone (loop $jLoop
        (br_if $jDone (i32.ge_u (local.get $j) (local.get $cols)))
        (local.set $p (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
        (f32.store (local.get $p) (f32.add (f32.load (local.get $p))
          (f32.load (i32.add (local.get $tmp) (i32.shl (i32.add (i32.mul (local.get $r) (i32.const ${GEMM_NR})) (local.get $j)) (i32.const 2))))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $jLoop)))
      (local.set $row (i32.add (local.get $row) (local.get $ldc)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rLoop))))`;
}

/** i8x16.shuffle byte indices selecting i32 lanes (0-3 of the first operand, 4-7 of the second). */
function lanes(...l: number[]): string {
  return l.flatMap((x) => [0, 1, 2, 3].map((b) => 4 * x + b)).join(' ');
}

/**
 * A stored [M, K] (sk = 4, a forward 1×1 conv): four rows' next four k values as vectors, transposed 4×4
 * in registers, so a full panel packs with vector moves instead of sixteen scalar ones.
 */
function transposing4(): string {
  const row = (r: number): string => `(v128.load (i32.add (local.get $src) (i32.mul (local.get $sm) (i32.const ${r}))))`;
  return `
      (if (i32.and (i32.eq (local.get $sk) (i32.const 4)) (i32.eq (local.get $rows) (i32.const 4))) (then
        (block $tDone (loop $tLoop
          (br_if $tDone (i32.gt_u (i32.add (local.get $kk) (i32.const 4)) (local.get $k)))
          (local.set $t0 (i8x16.shuffle ${lanes(0, 4, 1, 5)} ${row(0)} ${row(1)}))
          (local.set $t1 (i8x16.shuffle ${lanes(2, 6, 3, 7)} ${row(0)} ${row(1)}))
          (local.set $t2 (i8x16.shuffle ${lanes(0, 4, 1, 5)} ${row(2)} ${row(3)}))
          (local.set $t3 (i8x16.shuffle ${lanes(2, 6, 3, 7)} ${row(2)} ${row(3)}))
          (v128.store (local.get $d) (i8x16.shuffle ${lanes(0, 1, 4, 5)} (local.get $t0) (local.get $t2)))
          (v128.store offset=16 (local.get $d) (i8x16.shuffle ${lanes(2, 3, 6, 7)} (local.get $t0) (local.get $t2)))
          (v128.store offset=32 (local.get $d) (i8x16.shuffle ${lanes(0, 1, 4, 5)} (local.get $t1) (local.get $t3)))
          (v128.store offset=48 (local.get $d) (i8x16.shuffle ${lanes(2, 3, 6, 7)} (local.get $t1) (local.get $t3)))
          (local.set $d (i32.add (local.get $d) (i32.const 64)))
          (local.set $src (i32.add (local.get $src) (i32.const 16)))
          (local.set $kk (i32.add (local.get $kk) (i32.const 4)))
          (br $tLoop)))))`;
}

/** $packA: A(0:k, 0:m) → [⌈m/MR⌉][k][MR], zero-padded. Contiguous rows of MR (sm = 4) copy as vectors. */
function packA(): string {
  // MR contiguous floats: 16-byte moves, then an 8-byte one (MR even).
  const fast = [
    ...range(Math.floor(GEMM_MR / 4)).map((q) => `(v128.store offset=${16 * q} (local.get $d) (v128.load offset=${16 * q} (local.get $src)))`),
    ...(GEMM_MR % 4 === 2 ? [`(i64.store offset=${16 * Math.floor(GEMM_MR / 4)} (local.get $d) (i64.load offset=${16 * Math.floor(GEMM_MR / 4)} (local.get $src)))`] : []),
  ].join(' ');
  if (GEMM_MR % 2 !== 0) throw new Error('gemm-wat: MR must be even');
  return `
  (func $packA (param $a i32) (param $sk i32) (param $sm i32) (param $k i32) (param $m i32) (param $d i32)
    (local $m0 i32) (local $rows i32) (local $kk i32) (local $src i32) (local $r i32) (local $p i32) (local $fast i32)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $m0 (i32.const 0))
    (block $mDone (loop $mLoop
      (br_if $mDone (i32.ge_u (local.get $m0) (local.get $m)))
      (local.set $rows (i32.sub (local.get $m) (local.get $m0)))
      (if (i32.gt_u (local.get $rows) (i32.const ${GEMM_MR})) (then (local.set $rows (i32.const ${GEMM_MR}))))
      (local.set $fast (i32.and (i32.eq (local.get $sm) (i32.const 4)) (i32.eq (local.get $rows) (i32.const ${GEMM_MR}))))
      (local.set $src (i32.add (local.get $a) (i32.mul (local.get $m0) (local.get $sm))))
      (local.set $kk (i32.const 0))${GEMM_MR === 4 ? transposing4() : ''}
      (block $kDone (loop $kLoop
        (br_if $kDone (i32.ge_u (local.get $kk) (local.get $k)))
        (if (local.get $fast)
          (then ${fast})
          (else
            (local.set $r (i32.const 0))
            (local.set $p (local.get $src))
            (block $rDone (loop $rLoop
              (br_if $rDone (i32.ge_u (local.get $r) (i32.const ${GEMM_MR})))
              (f32.store (i32.add (local.get $d) (i32.shl (local.get $r) (i32.const 2)))
                (if (result f32) (i32.lt_u (local.get $r) (local.get $rows))
                  (then (f32.load (local.get $p))) (else (f32.const 0))))
              (local.set $p (i32.add (local.get $p) (local.get $sm)))
              (local.set $r (i32.add (local.get $r) (i32.const 1)))
              (br $rLoop)))))
        (local.set $d (i32.add (local.get $d) (i32.const ${4 * GEMM_MR})))
        (local.set $src (i32.add (local.get $src) (local.get $sk)))
        (local.set $kk (i32.add (local.get $kk) (i32.const 1)))
        (br $kLoop)))
      (local.set $m0 (i32.add (local.get $m0) (i32.const ${GEMM_MR})))
      (br $mLoop))))`;
}

/** $packB: B(0:k, 0:n), rows ldb bytes apart → [⌈n/NR⌉][k][NR], zero-padded. */
function packB(): string {
  const copy = range(V).map((q) => `(v128.store offset=${16 * q} (local.get $d) (v128.load offset=${16 * q} (local.get $src)))`).join(' ');
  return `
  (func $packB (param $b i32) (param $ldb i32) (param $k i32) (param $n i32) (param $d i32)
    (local $n0 i32) (local $cols i32) (local $kk i32) (local $src i32) (local $j i32)
    (local.set $n0 (i32.const 0))
    (block $nDone (loop $nLoop
      (br_if $nDone (i32.ge_u (local.get $n0) (local.get $n)))
      (local.set $cols (i32.sub (local.get $n) (local.get $n0)))
      (local.set $src (i32.add (local.get $b) (i32.shl (local.get $n0) (i32.const 2))))
      (local.set $kk (i32.const 0))
      (block $kDone (loop $kLoop
        (br_if $kDone (i32.ge_u (local.get $kk) (local.get $k)))
        (if (i32.ge_u (local.get $cols) (i32.const ${GEMM_NR}))
          (then ${copy})
          (else
            (local.set $j (i32.const 0))
            (block $jDone (loop $jLoop
              (br_if $jDone (i32.ge_u (local.get $j) (i32.const ${GEMM_NR})))
              (f32.store (i32.add (local.get $d) (i32.shl (local.get $j) (i32.const 2)))
                (if (result f32) (i32.lt_u (local.get $j) (local.get $cols))
                  (then (f32.load (i32.add (local.get $src) (i32.shl (local.get $j) (i32.const 2))))) (else (f32.const 0))))
              (local.set $j (i32.add (local.get $j) (i32.const 1)))
              (br $jLoop)))))
        (local.set $d (i32.add (local.get $d) (i32.const ${4 * GEMM_NR})))
        (local.set $src (i32.add (local.get $src) (local.get $ldb)))
        (local.set $kk (i32.add (local.get $kk) (i32.const 1)))
        (br $kLoop)))
      (local.set $n0 (i32.add (local.get $n0) (i32.const ${GEMM_NR})))
      (br $nLoop))))`;
}

/** The exported driver: K-blocks, M-blocks, then NR panels × MR panels of tiles. */
function driver(): string {
  return `
  ;; work: ⌈mc/MR⌉·MR·kc + ⌈n/NR⌉·NR·kc + MR·NR floats of scratch (see gemmWorkFloats).
  (func (export "gemm") (param $a i32) (param $sk i32) (param $sm i32) (param $b i32) (param $ldb i32)
      (param $c i32) (param $ldc i32) (param $m i32) (param $n i32) (param $k i32) (param $kc i32) (param $mc i32) (param $work i32)
    (local $pA i32) (local $pB i32) (local $tmp i32) (local $k0 i32) (local $kb i32) (local $m0 i32) (local $mb i32)
    (local $n0 i32) (local $i0 i32) (local $panelB i32) (local $panelA i32) (local $cols i32) (local $rows i32)
    (local.set $pA (local.get $work))
    (local.set $pB (i32.add (local.get $pA) (i32.shl (i32.mul
      (i32.and (i32.add (local.get $mc) (i32.const ${GEMM_MR - 1})) (i32.const ${-GEMM_MR})) (local.get $kc)) (i32.const 2))))
    (local.set $tmp (i32.add (local.get $pB) (i32.shl (i32.mul
      (i32.and (i32.add (local.get $n) (i32.const ${GEMM_NR - 1})) (i32.const ${-GEMM_NR})) (local.get $kc)) (i32.const 2))))
    (local.set $k0 (i32.const 0))
    (block $kDone (loop $kLoop
      (br_if $kDone (i32.ge_u (local.get $k0) (local.get $k)))
      (local.set $kb (i32.sub (local.get $k) (local.get $k0)))
      (if (i32.gt_u (local.get $kb) (local.get $kc)) (then (local.set $kb (local.get $kc))))
      (call $packB (i32.add (local.get $b) (i32.mul (local.get $k0) (local.get $ldb))) (local.get $ldb) (local.get $kb) (local.get $n) (local.get $pB))
      (local.set $m0 (i32.const 0))
      (block $mDone (loop $mLoop
        (br_if $mDone (i32.ge_u (local.get $m0) (local.get $m)))
        (local.set $mb (i32.sub (local.get $m) (local.get $m0)))
        (if (i32.gt_u (local.get $mb) (local.get $mc)) (then (local.set $mb (local.get $mc))))
        (call $packA (i32.add (local.get $a) (i32.add (i32.mul (local.get $k0) (local.get $sk)) (i32.mul (local.get $m0) (local.get $sm))))
          (local.get $sk) (local.get $sm) (local.get $kb) (local.get $mb) (local.get $pA))
        (local.set $n0 (i32.const 0))
        (local.set $panelB (local.get $pB))
        (block $nDone (loop $nLoop
          (br_if $nDone (i32.ge_u (local.get $n0) (local.get $n)))
          (local.set $cols (i32.sub (local.get $n) (local.get $n0)))
          (if (i32.gt_u (local.get $cols) (i32.const ${GEMM_NR})) (then (local.set $cols (i32.const ${GEMM_NR}))))
          (local.set $i0 (i32.const 0))
          (local.set $panelA (local.get $pA))
          (block $iDone (loop $iLoop
            (br_if $iDone (i32.ge_u (local.get $i0) (local.get $mb)))
            (local.set $rows (i32.sub (local.get $mb) (local.get $i0)))
            (if (i32.gt_u (local.get $rows) (i32.const ${GEMM_MR})) (then (local.set $rows (i32.const ${GEMM_MR}))))
            (call $tile (local.get $panelA) (local.get $panelB) (local.get $kb)
              (i32.add (local.get $c) (i32.add (i32.mul (i32.add (local.get $m0) (local.get $i0)) (local.get $ldc)) (i32.shl (local.get $n0) (i32.const 2))))
              (local.get $ldc) (local.get $rows) (local.get $cols) (local.get $tmp))
            (local.set $panelA (i32.add (local.get $panelA) (i32.mul (local.get $kb) (i32.const ${4 * GEMM_MR}))))
            (local.set $i0 (i32.add (local.get $i0) (i32.const ${GEMM_MR})))
            (br $iLoop)))
          (local.set $panelB (i32.add (local.get $panelB) (i32.mul (local.get $kb) (i32.const ${4 * GEMM_NR}))))
          (local.set $n0 (i32.add (local.get $n0) (i32.const ${GEMM_NR})))
          (br $nLoop)))
        (local.set $m0 (i32.add (local.get $m0) (local.get $mc)))
        (br $mLoop)))
      (local.set $k0 (i32.add (local.get $k0) (local.get $kc)))
      (br $kLoop))))`;
}

export function gemmWat(variant: GemmVariant): string {
  return `;; Generated by scripts/gemm-wat.ts (${variant} build): float32 C += Aᵀ·B, ${GEMM_MR}×${GEMM_NR} register tiles.
(module
  (import "env" "memory" (memory 0))${tile(variant)}${packA()}${packB()}${driver()}
)
`;
}
