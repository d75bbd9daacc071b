;; Per-channel float64 sums over an [M, C] float32 tensor (NHWC flattened) in tfjs-backend-wasm's own memory:
;; batch-norm statistics and the batch-norm backward's two sums. Two channels per SIMD lane pair
;; (f32 → f64 promotion is exact), the same additions in the same order per channel as a scalar loop, so the
;; results are bit-identical to JavaScript's. Pointers are byte offsets into the imported memory; the caller
;; owns every buffer. Assembled by scripts/build-wasm.ts into channel-sums-wasm.ts.
(module
  (import "env" "memory" (memory 0))

  ;; out: [shift | s1 | s2], each C float64. shift[j] = x[0, j]; s1[j] = Σ (x − shift); s2[j] = Σ (x − shift)².
  (func (export "shiftedSums") (param $x i32) (param $m i32) (param $c i32) (param $out i32)
    (local $s1 i32) (local $s2 i32) (local $row i32) (local $px i32) (local $j i32) (local $pairs i32)
    (local $d v128) (local $ds f64)
    (local.set $s1 (i32.add (local.get $out) (i32.shl (local.get $c) (i32.const 3))))
    (local.set $s2 (i32.add (local.get $s1) (i32.shl (local.get $c) (i32.const 3))))
    (local.set $pairs (i32.and (local.get $c) (i32.const -2)))
    ;; shift = the first row, sums = 0
    (local.set $j (i32.const 0))
    (block $done (loop $init
      (br_if $done (i32.ge_u (local.get $j) (local.get $c)))
      (f64.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 3)))
        (f64.promote_f32 (f32.load (i32.add (local.get $x) (i32.shl (local.get $j) (i32.const 2))))))
      (f64.store (i32.add (local.get $s1) (i32.shl (local.get $j) (i32.const 3))) (f64.const 0))
      (f64.store (i32.add (local.get $s2) (i32.shl (local.get $j) (i32.const 3))) (f64.const 0))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $init)))
    (local.set $px (local.get $x))
    (local.set $row (i32.const 0))
    (block $rowsDone (loop $rows
      (br_if $rowsDone (i32.ge_u (local.get $row) (local.get $m)))
      (local.set $j (i32.const 0))
      (block $pairsDone (loop $pairLoop
        (br_if $pairsDone (i32.ge_u (local.get $j) (local.get $pairs)))
        (local.set $d (f64x2.sub
          (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $px) (i32.shl (local.get $j) (i32.const 2)))))
          (v128.load (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 3))))))
        (v128.store (i32.add (local.get $s1) (i32.shl (local.get $j) (i32.const 3)))
          (f64x2.add (v128.load (i32.add (local.get $s1) (i32.shl (local.get $j) (i32.const 3)))) (local.get $d)))
        (v128.store (i32.add (local.get $s2) (i32.shl (local.get $j) (i32.const 3)))
          (f64x2.add (v128.load (i32.add (local.get $s2) (i32.shl (local.get $j) (i32.const 3))))
            (f64x2.mul (local.get $d) (local.get $d))))
        (local.set $j (i32.add (local.get $j) (i32.const 2)))
        (br $pairLoop)))
      ;; an odd last channel
      (if (i32.lt_u (local.get $j) (local.get $c)) (then
        (local.set $ds (f64.sub
          (f64.promote_f32 (f32.load (i32.add (local.get $px) (i32.shl (local.get $j) (i32.const 2)))))
          (f64.load (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 3))))))
        (f64.store (i32.add (local.get $s1) (i32.shl (local.get $j) (i32.const 3)))
          (f64.add (f64.load (i32.add (local.get $s1) (i32.shl (local.get $j) (i32.const 3)))) (local.get $ds)))
        (f64.store (i32.add (local.get $s2) (i32.shl (local.get $j) (i32.const 3)))
          (f64.add (f64.load (i32.add (local.get $s2) (i32.shl (local.get $j) (i32.const 3))))
            (f64.mul (local.get $ds) (local.get $ds))))))
      (local.set $px (i32.add (local.get $px) (i32.shl (local.get $c) (i32.const 2))))
      (local.set $row (i32.add (local.get $row) (i32.const 1)))
      (br $rows))))

  ;; out: [center | s1 | s2], each C float64, center filled by the caller.
  ;; s1[j] = Σ dy; s2[j] = Σ dy·(x − center[j]).
  (func (export "gradSums") (param $dy i32) (param $x i32) (param $m i32) (param $c i32) (param $out i32)
    (local $s1 i32) (local $s2 i32) (local $row i32) (local $pg i32) (local $px i32) (local $j i32) (local $pairs i32)
    (local $g v128) (local $gs f64)
    (local.set $s1 (i32.add (local.get $out) (i32.shl (local.get $c) (i32.const 3))))
    (local.set $s2 (i32.add (local.get $s1) (i32.shl (local.get $c) (i32.const 3))))
    (local.set $pairs (i32.and (local.get $c) (i32.const -2)))
    (local.set $j (i32.const 0))
    (block $done (loop $init
      (br_if $done (i32.ge_u (local.get $j) (local.get $c)))
      (f64.store (i32.add (local.get $s1) (i32.shl (local.get $j) (i32.const 3))) (f64.const 0))
      (f64.store (i32.add (local.get $s2) (i32.shl (local.get $j) (i32.const 3))) (f64.const 0))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $init)))
    (local.set $pg (local.get $dy))
    (local.set $px (local.get $x))
    (local.set $row (i32.const 0))
    (block $rowsDone (loop $rows
      (br_if $rowsDone (i32.ge_u (local.get $row) (local.get $m)))
      (local.set $j (i32.const 0))
      (block $pairsDone (loop $pairLoop
        (br_if $pairsDone (i32.ge_u (local.get $j) (local.get $pairs)))
        (local.set $g (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $pg) (i32.shl (local.get $j) (i32.const 2))))))
        (v128.store (i32.add (local.get $s1) (i32.shl (local.get $j) (i32.const 3)))
          (f64x2.add (v128.load (i32.add (local.get $s1) (i32.shl (local.get $j) (i32.const 3)))) (local.get $g)))
        (v128.store (i32.add (local.get $s2) (i32.shl (local.get $j) (i32.const 3)))
          (f64x2.add (v128.load (i32.add (local.get $s2) (i32.shl (local.get $j) (i32.const 3))))
            (f64x2.mul (local.get $g)
              (f64x2.sub
                (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $px) (i32.shl (local.get $j) (i32.const 2)))))
                (v128.load (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 3))))))))
        (local.set $j (i32.add (local.get $j) (i32.const 2)))
        (br $pairLoop)))
      (if (i32.lt_u (local.get $j) (local.get $c)) (then
        (local.set $gs (f64.promote_f32 (f32.load (i32.add (local.get $pg) (i32.shl (local.get $j) (i32.const 2))))))
        (f64.store (i32.add (local.get $s1) (i32.shl (local.get $j) (i32.const 3)))
          (f64.add (f64.load (i32.add (local.get $s1) (i32.shl (local.get $j) (i32.const 3)))) (local.get $gs)))
        (f64.store (i32.add (local.get $s2) (i32.shl (local.get $j) (i32.const 3)))
          (f64.add (f64.load (i32.add (local.get $s2) (i32.shl (local.get $j) (i32.const 3))))
            (f64.mul (local.get $gs)
              (f64.sub
                (f64.promote_f32 (f32.load (i32.add (local.get $px) (i32.shl (local.get $j) (i32.const 2)))))
                (f64.load (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 3))))))))))
      (local.set $pg (i32.add (local.get $pg) (i32.shl (local.get $c) (i32.const 2))))
      (local.set $px (i32.add (local.get $px) (i32.shl (local.get $c) (i32.const 2))))
      (local.set $row (i32.add (local.get $row) (i32.const 1)))
      (br $rows))))
)
