;; C += A·B with every product exact and every sum kept in float64 (issue #23): the convolutions and matrix
;; products whose float32 rounding decides a training step's ReLU masks. The operands are float32 values
;; the caller has widened to float64 (`promote`; a gather writes them widened): a float32 × float32 product
;; has at most 48 significant bits, so in float64 it is exact, the float64 accumulator carries ~29 bits more
;; than a float32 one, and the caller rounds to float32 once, at the end (`round`). Widening once up front
;; keeps the inner loop to loads, multiplies and adds (the A scalar is one load64_splat).
;;
;; Layouts (byte offsets and byte strides into the imported memory; the caller owns every buffer):
;;   A (float64): element (i, k) at a + i·aRow + k·aK — any strides, so Aᵀ is read in place;
;;   B (float64): element (k, j) at b + k·ldb + 8·j — rows contiguous (read as vectors);
;;   C (float64): element (i, j) at c + i·ldc + 8·j, accumulated into.
;; Register blocking: 2 rows × 8 columns of C in f64x2 accumulators, chosen by measurement
;; (scripts/bench-exact-gemm.ts); leftover rows run 1 × 8, leftover columns one element at a time. A tile's
;; sum over K is its own float64 sum, added to C at the end: the order of float64 additions differs from a
;; plain loop's, at float64 (not float32) rounding.
;; Assembled by scripts/build-wasm.ts into exact-gemm-wasm.ts.
(module
  (import "env" "memory" (memory 0))

  ;; 2 row(s) × 8 columns of C over all of K.
  (func $tile (param $a i32) (param $aRow i32) (param $aK i32) (param $b i32) (param $ldb i32)
                 (param $c i32) (param $ldc i32) (param $k i32)
    (local $a1 i32)
    (local $c00 v128) (local $c01 v128) (local $c02 v128) (local $c03 v128) (local $c10 v128) (local $c11 v128) (local $c12 v128) (local $c13 v128)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128) (local $s v128)
    (local.set $a1 (i32.add (local.get $a) (local.get $aRow)))
    (block $done (loop $kLoop
      (br_if $done (i32.eqz (local.get $k)))
      (local.set $b0 (v128.load (local.get $b)))
      (local.set $b1 (v128.load offset=16 (local.get $b)))
      (local.set $b2 (v128.load offset=32 (local.get $b)))
      (local.set $b3 (v128.load offset=48 (local.get $b)))
      (local.set $s (v128.load64_splat (local.get $a)))
      (local.set $c00 (f64x2.add (local.get $c00) (f64x2.mul (local.get $s) (local.get $b0))))
      (local.set $c01 (f64x2.add (local.get $c01) (f64x2.mul (local.get $s) (local.get $b1))))
      (local.set $c02 (f64x2.add (local.get $c02) (f64x2.mul (local.get $s) (local.get $b2))))
      (local.set $c03 (f64x2.add (local.get $c03) (f64x2.mul (local.get $s) (local.get $b3))))
      (local.set $s (v128.load64_splat (local.get $a1)))
      (local.set $c10 (f64x2.add (local.get $c10) (f64x2.mul (local.get $s) (local.get $b0))))
      (local.set $c11 (f64x2.add (local.get $c11) (f64x2.mul (local.get $s) (local.get $b1))))
      (local.set $c12 (f64x2.add (local.get $c12) (f64x2.mul (local.get $s) (local.get $b2))))
      (local.set $c13 (f64x2.add (local.get $c13) (f64x2.mul (local.get $s) (local.get $b3))))
      (local.set $a (i32.add (local.get $a) (local.get $aK)))
      (local.set $a1 (i32.add (local.get $a1) (local.get $aK)))
      (local.set $b (i32.add (local.get $b) (local.get $ldb)))
      (local.set $k (i32.sub (local.get $k) (i32.const 1)))
      (br $kLoop)))
    (v128.store (local.get $c) (f64x2.add (v128.load (local.get $c)) (local.get $c00)))
    (v128.store offset=16 (local.get $c) (f64x2.add (v128.load offset=16 (local.get $c)) (local.get $c01)))
    (v128.store offset=32 (local.get $c) (f64x2.add (v128.load offset=32 (local.get $c)) (local.get $c02)))
    (v128.store offset=48 (local.get $c) (f64x2.add (v128.load offset=48 (local.get $c)) (local.get $c03)))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store (local.get $c) (f64x2.add (v128.load (local.get $c)) (local.get $c10)))
    (v128.store offset=16 (local.get $c) (f64x2.add (v128.load offset=16 (local.get $c)) (local.get $c11)))
    (v128.store offset=32 (local.get $c) (f64x2.add (v128.load offset=32 (local.get $c)) (local.get $c12)))
    (v128.store offset=48 (local.get $c) (f64x2.add (v128.load offset=48 (local.get $c)) (local.get $c13))))

  ;; 1 row(s) × 8 columns of C over all of K.
  (func $row (param $a i32) (param $aRow i32) (param $aK i32) (param $b i32) (param $ldb i32)
                 (param $c i32) (param $ldc i32) (param $k i32)
    (local $c00 v128) (local $c01 v128) (local $c02 v128) (local $c03 v128)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128) (local $s v128)
    (block $done (loop $kLoop
      (br_if $done (i32.eqz (local.get $k)))
      (local.set $b0 (v128.load (local.get $b)))
      (local.set $b1 (v128.load offset=16 (local.get $b)))
      (local.set $b2 (v128.load offset=32 (local.get $b)))
      (local.set $b3 (v128.load offset=48 (local.get $b)))
      (local.set $s (v128.load64_splat (local.get $a)))
      (local.set $c00 (f64x2.add (local.get $c00) (f64x2.mul (local.get $s) (local.get $b0))))
      (local.set $c01 (f64x2.add (local.get $c01) (f64x2.mul (local.get $s) (local.get $b1))))
      (local.set $c02 (f64x2.add (local.get $c02) (f64x2.mul (local.get $s) (local.get $b2))))
      (local.set $c03 (f64x2.add (local.get $c03) (f64x2.mul (local.get $s) (local.get $b3))))
      (local.set $a (i32.add (local.get $a) (local.get $aK)))
      (local.set $b (i32.add (local.get $b) (local.get $ldb)))
      (local.set $k (i32.sub (local.get $k) (i32.const 1)))
      (br $kLoop)))
    (v128.store (local.get $c) (f64x2.add (v128.load (local.get $c)) (local.get $c00)))
    (v128.store offset=16 (local.get $c) (f64x2.add (v128.load offset=16 (local.get $c)) (local.get $c01)))
    (v128.store offset=32 (local.get $c) (f64x2.add (v128.load offset=32 (local.get $c)) (local.get $c02)))
    (v128.store offset=48 (local.get $c) (f64x2.add (v128.load offset=48 (local.get $c)) (local.get $c03))))

  ;; One element of C over all of K.
  (func $one (param $a i32) (param $aK i32) (param $b i32) (param $ldb i32) (param $c i32) (param $k i32)
    (local $s f64)
    (block $done (loop $kLoop
      (br_if $done (i32.eqz (local.get $k)))
      (local.set $s (f64.add (local.get $s) (f64.mul (f64.load (local.get $a)) (f64.load (local.get $b)))))
      (local.set $a (i32.add (local.get $a) (local.get $aK)))
      (local.set $b (i32.add (local.get $b) (local.get $ldb)))
      (local.set $k (i32.sub (local.get $k) (i32.const 1)))
      (br $kLoop)))
    (f64.store (local.get $c) (f64.add (f64.load (local.get $c)) (local.get $s))))

  ;; C[m, n] += A[m, k] · B[k, n] (layouts above).
  (func (export "gemm") (param $a i32) (param $aRow i32) (param $aK i32) (param $b i32) (param $ldb i32)
                        (param $c i32) (param $ldc i32) (param $m i32) (param $n i32) (param $k i32)
    (local $i i32) (local $j i32) (local $mr i32) (local $nc i32) (local $pa i32) (local $pc i32)
    (local.set $mr (i32.sub (local.get $m) (i32.rem_u (local.get $m) (i32.const 2))))
    (local.set $nc (i32.sub (local.get $n) (i32.rem_u (local.get $n) (i32.const 8))))
    ;; full tiles
    (local.set $i (i32.const 0))
    (block $rowsDone (loop $rows
      (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $mr)))
      (local.set $pa (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $aRow))))
      (local.set $pc (i32.add (local.get $c) (i32.mul (local.get $i) (local.get $ldc))))
      (local.set $j (i32.const 0))
      (block $colsDone (loop $cols
        (br_if $colsDone (i32.ge_u (local.get $j) (local.get $nc)))
        (call $tile (local.get $pa) (local.get $aRow) (local.get $aK)
          (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 3))) (local.get $ldb)
          (i32.add (local.get $pc) (i32.shl (local.get $j) (i32.const 3))) (local.get $ldc) (local.get $k))
        (local.set $j (i32.add (local.get $j) (i32.const 8)))
        (br $cols)))
      (local.set $i (i32.add (local.get $i) (i32.const 2)))
      (br $rows)))
    ;; leftover rows, one at a time
    (block $rowsDone (loop $rows
      (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $m)))
      (local.set $pa (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $aRow))))
      (local.set $pc (i32.add (local.get $c) (i32.mul (local.get $i) (local.get $ldc))))
      (local.set $j (i32.const 0))
      (block $colsDone (loop $cols
        (br_if $colsDone (i32.ge_u (local.get $j) (local.get $nc)))
        (call $row (local.get $pa) (local.get $aRow) (local.get $aK)
          (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 3))) (local.get $ldb)
          (i32.add (local.get $pc) (i32.shl (local.get $j) (i32.const 3))) (local.get $ldc) (local.get $k))
        (local.set $j (i32.add (local.get $j) (i32.const 8)))
        (br $cols)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rows)))
    ;; leftover columns, one element at a time
    (if (i32.lt_u (local.get $nc) (local.get $n)) (then
      (local.set $i (i32.const 0))
      (block $rowsDone (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $m)))
        (local.set $pa (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $aRow))))
        (local.set $pc (i32.add (local.get $c) (i32.mul (local.get $i) (local.get $ldc))))
        (local.set $j (local.get $nc))
        (block $colsDone (loop $cols
          (br_if $colsDone (i32.ge_u (local.get $j) (local.get $n)))
          (call $one (local.get $pa) (local.get $aK)
            (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 3))) (local.get $ldb)
            (i32.add (local.get $pc) (i32.shl (local.get $j) (i32.const 3))) (local.get $k))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $cols)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows))))))

  ;; dst[i] = float64(src[i]) (exact) for `count` float32 values.
  (func $promote (export "promote") (param $src i32) (param $dst i32) (param $count i32)
    (local $pairs i32) (local $i i32)
    (local.set $pairs (i32.and (local.get $count) (i32.const -2)))
    (block $done (loop $pairLoop
      (br_if $done (i32.ge_u (local.get $i) (local.get $pairs)))
      (v128.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 3)))
        (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2))))))
      (local.set $i (i32.add (local.get $i) (i32.const 2)))
      (br $pairLoop)))
    (if (i32.lt_u (local.get $i) (local.get $count)) (then
      (f64.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 3)))
        (f64.promote_f32 (f32.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2)))))))))

  ;; `rows` rows of `cols` float32 values (row strides in bytes) widened to float64.
  (func (export "promoteRows") (param $src i32) (param $srcRow i32) (param $dst i32) (param $dstRow i32)
                               (param $rows i32) (param $cols i32)
    (block $done (loop $rowLoop
      (br_if $done (i32.eqz (local.get $rows)))
      (call $promote (local.get $src) (local.get $dst) (local.get $cols))
      (local.set $src (i32.add (local.get $src) (local.get $srcRow)))
      (local.set $dst (i32.add (local.get $dst) (local.get $dstRow)))
      (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
      (br $rowLoop))))

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

