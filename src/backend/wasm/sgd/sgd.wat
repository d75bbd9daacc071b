;; One worker's share of a data-parallel SGD step (src/step/sharded-sgd.ts), four elements per SIMD register:
;; the two workers' partial gradients summed, weight decay, momentum, the new weight. Every operation is an
;; IEEE float32 add or multiply (no fused multiply-add), in the order of tfjs's MomentumOptimizer after
;; TrainingOptimizer's weight decay, so the results are bit-identical to the Math.fround loop:
;;   g = (p0 + p1) + 0            (the float64 sum of two floats rounded once, −0 + −0 giving +0 as 0 + a + b)
;;   g = g + w·wd                 (flags & 2: weight decay)
;;   a = m·a + g
;;   out = (c·(g + a·m)) + w      (flags & 1: Nesterov)   or   out = (c·a) + w
;; c = −lr. Pointers are byte offsets into the imported memory (tfjs-backend-wasm's heap); a is updated in
;; place. Assembled by scripts/build-wasm.ts into sgd-wasm.ts.
(module
  (import "env" "memory" (memory 0))

  (func (export "sgdTwo") (param $p0 i32) (param $p1 i32) (param $w i32) (param $a i32) (param $out i32)
    (param $n i32) (param $m f32) (param $wd f32) (param $c f32) (param $flags i32)
    (local $i i32) (local $end4 i32) (local $off i32)
    (local $vm v128) (local $vwd v128) (local $vc v128) (local $zero v128)
    (local $g v128) (local $acc v128) (local $wv v128)
    (local $sg f32) (local $sacc f32) (local $sw f32)
    (local.set $vm (f32x4.splat (local.get $m)))
    (local.set $vwd (f32x4.splat (local.get $wd)))
    (local.set $vc (f32x4.splat (local.get $c)))
    (local.set $zero (f32x4.splat (f32.const 0)))
    (local.set $end4 (i32.and (local.get $n) (i32.const -4)))
    (local.set $i (i32.const 0))
    (block $done4 (loop $loop4
      (br_if $done4 (i32.ge_u (local.get $i) (local.get $end4)))
      (local.set $off (i32.shl (local.get $i) (i32.const 2)))
      (local.set $wv (v128.load (i32.add (local.get $w) (local.get $off))))
      (local.set $g (f32x4.add
        (f32x4.add (v128.load (i32.add (local.get $p0) (local.get $off))) (v128.load (i32.add (local.get $p1) (local.get $off))))
        (local.get $zero)))
      (if (i32.and (local.get $flags) (i32.const 2)) (then
        (local.set $g (f32x4.add (local.get $g) (f32x4.mul (local.get $wv) (local.get $vwd))))))
      (local.set $acc (f32x4.add (f32x4.mul (local.get $vm) (v128.load (i32.add (local.get $a) (local.get $off)))) (local.get $g)))
      (v128.store (i32.add (local.get $a) (local.get $off)) (local.get $acc))
      (if (i32.and (local.get $flags) (i32.const 1))
        (then (v128.store (i32.add (local.get $out) (local.get $off))
          (f32x4.add (f32x4.mul (local.get $vc) (f32x4.add (local.get $g) (f32x4.mul (local.get $acc) (local.get $vm)))) (local.get $wv))))
        (else (v128.store (i32.add (local.get $out) (local.get $off))
          (f32x4.add (f32x4.mul (local.get $vc) (local.get $acc)) (local.get $wv)))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $loop4)))
    ;; the last n mod 4 elements, one at a time, the same operations
    (block $done (loop $loop
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $off (i32.shl (local.get $i) (i32.const 2)))
      (local.set $sw (f32.load (i32.add (local.get $w) (local.get $off))))
      (local.set $sg (f32.add
        (f32.add (f32.load (i32.add (local.get $p0) (local.get $off))) (f32.load (i32.add (local.get $p1) (local.get $off))))
        (f32.const 0)))
      (if (i32.and (local.get $flags) (i32.const 2)) (then
        (local.set $sg (f32.add (local.get $sg) (f32.mul (local.get $sw) (local.get $wd))))))
      (local.set $sacc (f32.add (f32.mul (local.get $m) (f32.load (i32.add (local.get $a) (local.get $off)))) (local.get $sg)))
      (f32.store (i32.add (local.get $a) (local.get $off)) (local.get $sacc))
      (if (i32.and (local.get $flags) (i32.const 1))
        (then (f32.store (i32.add (local.get $out) (local.get $off))
          (f32.add (f32.mul (local.get $c) (f32.add (local.get $sg) (f32.mul (local.get $sacc) (local.get $m)))) (local.get $sw))))
        (else (f32.store (i32.add (local.get $out) (local.get $off))
          (f32.add (f32.mul (local.get $c) (local.get $sacc)) (local.get $sw)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $loop)))))
