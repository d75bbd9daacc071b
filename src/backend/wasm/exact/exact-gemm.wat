;; C += A·B with every product formed exactly and every sum kept in float64 (issue #23): the convolutions and
;; matrix products whose float32 rounding decides a training step's ReLU masks. A float32 × float32 product
;; has at most 48 significant bits, so in float64 it is exact; the float64 accumulator then carries ~29 bits
;; more than a float32 one, and the caller rounds to float32 once, at the end (`round`).
;;
;; Layouts (byte offsets and byte strides into the imported memory; the caller owns every buffer):
;;   A (float32): element (i, k) at a + i·aRow + k·aK — any strides, so Aᵀ and strided convolution windows
;;                are read in place (A is read one scalar at a time, broadcast across a row of C);
;;   B (float32): element (k, j) at b + k·ldb + 4·j — rows contiguous (B is read as vectors);
;;   C (float64): element (i, j) at c + i·ldc + 8·j, accumulated into.
;; Register blocking: 4 rows × 4 columns of C in eight f64x2 accumulators (with the two B vectors and the
;; broadcast A that is 11 of x64's 16 vector registers, so V8 keeps the K loop spill-free). Leftover rows
;; run 1 × 4, leftover columns one at a time. The sum over K in a tile is its own f64 sum, added to C at the
;; end: the order of float64 additions differs from a plain loop's, at float64 (not float32) rounding.
;; Assembled by scripts/build-wasm.ts into exact-gemm-wasm.ts.
(module
  (import "env" "memory" (memory 0))

  ;; One 4×4 tile of C over all of K.
  (func $tile4x4 (param $a i32) (param $aRow i32) (param $aK i32) (param $b i32) (param $ldb i32)
                 (param $c i32) (param $ldc i32) (param $k i32)
    (local $a1 i32) (local $a2 i32) (local $a3 i32)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local $b0 v128) (local $b1 v128) (local $s v128)
    (local.set $a1 (i32.add (local.get $a) (local.get $aRow)))
    (local.set $a2 (i32.add (local.get $a1) (local.get $aRow)))
    (local.set $a3 (i32.add (local.get $a2) (local.get $aRow)))
    (block $done (loop $kLoop
      (br_if $done (i32.eqz (local.get $k)))
      (local.set $b0 (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $b))))
      (local.set $b1 (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $b))))
      (local.set $s (f64x2.splat (f64.promote_f32 (f32.load (local.get $a)))))
      (local.set $c00 (f64x2.add (local.get $c00) (f64x2.mul (local.get $s) (local.get $b0))))
      (local.set $c01 (f64x2.add (local.get $c01) (f64x2.mul (local.get $s) (local.get $b1))))
      (local.set $s (f64x2.splat (f64.promote_f32 (f32.load (local.get $a1)))))
      (local.set $c10 (f64x2.add (local.get $c10) (f64x2.mul (local.get $s) (local.get $b0))))
      (local.set $c11 (f64x2.add (local.get $c11) (f64x2.mul (local.get $s) (local.get $b1))))
      (local.set $s (f64x2.splat (f64.promote_f32 (f32.load (local.get $a2)))))
      (local.set $c20 (f64x2.add (local.get $c20) (f64x2.mul (local.get $s) (local.get $b0))))
      (local.set $c21 (f64x2.add (local.get $c21) (f64x2.mul (local.get $s) (local.get $b1))))
      (local.set $s (f64x2.splat (f64.promote_f32 (f32.load (local.get $a3)))))
      (local.set $c30 (f64x2.add (local.get $c30) (f64x2.mul (local.get $s) (local.get $b0))))
      (local.set $c31 (f64x2.add (local.get $c31) (f64x2.mul (local.get $s) (local.get $b1))))
      (local.set $a (i32.add (local.get $a) (local.get $aK)))
      (local.set $a1 (i32.add (local.get $a1) (local.get $aK)))
      (local.set $a2 (i32.add (local.get $a2) (local.get $aK)))
      (local.set $a3 (i32.add (local.get $a3) (local.get $aK)))
      (local.set $b (i32.add (local.get $b) (local.get $ldb)))
      (local.set $k (i32.sub (local.get $k) (i32.const 1)))
      (br $kLoop)))
    (v128.store (local.get $c) (f64x2.add (v128.load (local.get $c)) (local.get $c00)))
    (v128.store offset=16 (local.get $c) (f64x2.add (v128.load offset=16 (local.get $c)) (local.get $c01)))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store (local.get $c) (f64x2.add (v128.load (local.get $c)) (local.get $c10)))
    (v128.store offset=16 (local.get $c) (f64x2.add (v128.load offset=16 (local.get $c)) (local.get $c11)))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store (local.get $c) (f64x2.add (v128.load (local.get $c)) (local.get $c20)))
    (v128.store offset=16 (local.get $c) (f64x2.add (v128.load offset=16 (local.get $c)) (local.get $c21)))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store (local.get $c) (f64x2.add (v128.load (local.get $c)) (local.get $c30)))
    (v128.store offset=16 (local.get $c) (f64x2.add (v128.load offset=16 (local.get $c)) (local.get $c31))))

  ;; One row × 4 columns of C over all of K.
  (func $tile1x4 (param $a i32) (param $aK i32) (param $b i32) (param $ldb i32) (param $c i32) (param $k i32)
    (local $c0 v128) (local $c1 v128) (local $s v128)
    (block $done (loop $kLoop
      (br_if $done (i32.eqz (local.get $k)))
      (local.set $s (f64x2.splat (f64.promote_f32 (f32.load (local.get $a)))))
      (local.set $c0 (f64x2.add (local.get $c0)
        (f64x2.mul (local.get $s) (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $b))))))
      (local.set $c1 (f64x2.add (local.get $c1)
        (f64x2.mul (local.get $s) (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $b))))))
      (local.set $a (i32.add (local.get $a) (local.get $aK)))
      (local.set $b (i32.add (local.get $b) (local.get $ldb)))
      (local.set $k (i32.sub (local.get $k) (i32.const 1)))
      (br $kLoop)))
    (v128.store (local.get $c) (f64x2.add (v128.load (local.get $c)) (local.get $c0)))
    (v128.store offset=16 (local.get $c) (f64x2.add (v128.load offset=16 (local.get $c)) (local.get $c1))))

  ;; One element of C over all of K.
  (func $tile1x1 (param $a i32) (param $aK i32) (param $b i32) (param $ldb i32) (param $c i32) (param $k i32)
    (local $s f64)
    (block $done (loop $kLoop
      (br_if $done (i32.eqz (local.get $k)))
      (local.set $s (f64.add (local.get $s)
        (f64.mul (f64.promote_f32 (f32.load (local.get $a))) (f64.promote_f32 (f32.load (local.get $b))))))
      (local.set $a (i32.add (local.get $a) (local.get $aK)))
      (local.set $b (i32.add (local.get $b) (local.get $ldb)))
      (local.set $k (i32.sub (local.get $k) (i32.const 1)))
      (br $kLoop)))
    (f64.store (local.get $c) (f64.add (f64.load (local.get $c)) (local.get $s))))

  ;; C[m, n] += A[m, k] · B[k, n] (layouts above).
  (func (export "gemm") (param $a i32) (param $aRow i32) (param $aK i32) (param $b i32) (param $ldb i32)
                        (param $c i32) (param $ldc i32) (param $m i32) (param $n i32) (param $k i32)
    (local $i i32) (local $j i32) (local $m4 i32) (local $n4 i32) (local $pa i32) (local $pc i32)
    (local.set $m4 (i32.and (local.get $m) (i32.const -4)))
    (local.set $n4 (i32.and (local.get $n) (i32.const -4)))
    ;; full 4×4 tiles
    (local.set $i (i32.const 0))
    (block $rowsDone (loop $rows
      (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $m4)))
      (local.set $pa (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $aRow))))
      (local.set $pc (i32.add (local.get $c) (i32.mul (local.get $i) (local.get $ldc))))
      (local.set $j (i32.const 0))
      (block $colsDone (loop $cols
        (br_if $colsDone (i32.ge_u (local.get $j) (local.get $n4)))
        (call $tile4x4 (local.get $pa) (local.get $aRow) (local.get $aK)
          (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))) (local.get $ldb)
          (i32.add (local.get $pc) (i32.shl (local.get $j) (i32.const 3))) (local.get $ldc) (local.get $k))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $cols)))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $rows)))
    ;; leftover rows, 1×4
    (block $rowsDone (loop $rows
      (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $m)))
      (local.set $pa (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $aRow))))
      (local.set $pc (i32.add (local.get $c) (i32.mul (local.get $i) (local.get $ldc))))
      (local.set $j (i32.const 0))
      (block $colsDone (loop $cols
        (br_if $colsDone (i32.ge_u (local.get $j) (local.get $n4)))
        (call $tile1x4 (local.get $pa) (local.get $aK)
          (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))) (local.get $ldb)
          (i32.add (local.get $pc) (i32.shl (local.get $j) (i32.const 3))) (local.get $k))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $cols)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rows)))
    ;; leftover columns, one element at a time
    (if (i32.lt_u (local.get $n4) (local.get $n)) (then
      (local.set $i (i32.const 0))
      (block $rowsDone (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $m)))
        (local.set $pa (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $aRow))))
        (local.set $pc (i32.add (local.get $c) (i32.mul (local.get $i) (local.get $ldc))))
        (local.set $j (local.get $n4))
        (block $colsDone (loop $cols
          (br_if $colsDone (i32.ge_u (local.get $j) (local.get $n)))
          (call $tile1x1 (local.get $pa) (local.get $aK)
            (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))) (local.get $ldb)
            (i32.add (local.get $pc) (i32.shl (local.get $j) (i32.const 3))) (local.get $k))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $cols)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows))))))

  ;; dst[i] = float32(src[i]) for `count` values, rounding to nearest: the one rounding of an exact sum.
  (func (export "round") (param $src i32) (param $dst i32) (param $count i32)
    (local $pairs i32) (local $i i32)
    (local.set $pairs (i32.and (local.get $count) (i32.const -2)))
    (block $done (loop $pairLoop
      (br_if $done (i32.ge_u (local.get $i) (local.get $pairs)))
      (v128.store64_lane 0 (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
        (f32x4.demote_f64x2_zero (v128.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 3))))))
      (local.set $i (i32.add (local.get $i) (i32.const 2)))
      (br $pairLoop)))
    (if (i32.lt_u (local.get $i) (local.get $count)) (then
      (f32.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
        (f32.demote_f64 (f64.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 3)))))))))
)
