;; WebAssembly SIMD routines for float32 tensor statistics and histograms (see simdStats.ts for the JS side).
;;
;; The module owns a fixed 25-page (1.5625 MiB) linear memory that never grows. JavaScript copies a tensor chunk
;; into the data window (at most WINDOW float32 values at a time, padded to a multiple of 4), calls a routine, and
;; reads the results back. All addresses below are fixed and exported as globals so the JS side never repeats them.
;;
;; Layout (bytes):
;;   RESULTS    0         moments results: sum f64 @0, sum of squares f64 @8, min f32x4 @16, max f32x4 @32,
;;                        zeros i32 @48, finite i32 @52; histogram scratch: 4 slot offsets i32 @64
;;   DATA       65536     the value window, WINDOW = 262144 float32 (1 MiB) plus one page of padding
;;   EDGE_LO    1179648   histogram: float32 lower edge per bin (MAX_BINS entries)
;;   EDGE_HI    1245184   histogram: float32 upper edge per bin (MAX_BINS entries)
;;   COUNTS     1310720   histogram: 4 interleaved int32 count tables, slot b of table k at COUNTS + 16 b + 4 k,
;;                        MAX_BINS + 1 slots (slot `bins` collects values outside [lo, hi])
;;
;; Exactness: moments take each value to float64 (f64x2.promote_low_f32x4) before subtracting the shift, so every
;; term is the same float64 as in the JS routine and only the summation order differs (8 interleaved partial sums,
;; which is no less accurate than one running sum). Histogram bins are identical to the JS routine's (see
;; `histogram`: a float32 fast path taken only where rounding provably cannot matter, else the JS routine's float64
;; estimate and edge correction, with edges rounded to float32 in the direction that keeps each comparison exact).

(module
  (memory (export "memory") 25 25)

  (global (export "RESULTS") i32 (i32.const 0))
  (global (export "DATA") i32 (i32.const 65536))
  (global (export "WINDOW") i32 (i32.const 262144))
  (global (export "EDGE_LO") i32 (i32.const 1179648))
  (global (export "EDGE_HI") i32 (i32.const 1245184))
  (global (export "COUNTS") i32 (i32.const 1310720))
  (global (export "MAX_BINS") i32 (i32.const 16384))

  ;; Moments of DATA[0 .. n) (n a multiple of 4), shifted by `shift`, assuming every value is finite. A NaN or ±Inf
  ;; value makes the sums non-finite, and the caller then runs `momentsChecked` on the same window instead. Writes
  ;; the RESULTS block; `finite` is set to n. min and max are kept per lane with the JS routine's update rule
  ;; (pmin: replace only when strictly smaller), so the caller merges the 4 lanes.
  (func (export "moments") (param $n i32) (param $shift f64)
    (local $p i32) (local $end i32)
    (local $v v128) (local $a v128) (local $b v128) (local $sh v128)
    (local $s0 v128) (local $s1 v128) (local $q0 v128) (local $q1 v128)
    (local $v2 v128) (local $c v128) (local $d v128)
    (local $s2 v128) (local $s3 v128) (local $q2 v128) (local $q3 v128)
    (local $mn v128) (local $mx v128) (local $z v128)
    (local.set $sh (f64x2.splat (local.get $shift)))
    (local.set $mn (v128.const f32x4 inf inf inf inf))
    (local.set $mx (v128.const f32x4 -inf -inf -inf -inf))
    (local.set $p (i32.const 65536))
    (local.set $end (i32.add (i32.const 65536) (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2))))
    ;; 8 values per iteration: two vectors, each split into two float64 pairs with their own partial sums.
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $v (v128.load (local.get $p)))
        (local.set $v2 (v128.load offset=16 (local.get $p)))
        ;; Each half converted straight from memory (load64_zero + promote), which spares a shuffle per half.
        (local.set $a (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $p))) (local.get $sh)))
        (local.set $b (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $p))) (local.get $sh)))
        (local.set $c (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=16 (local.get $p))) (local.get $sh)))
        (local.set $d (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=24 (local.get $p))) (local.get $sh)))
        (local.set $s0 (f64x2.add (local.get $s0) (local.get $a)))
        (local.set $s1 (f64x2.add (local.get $s1) (local.get $b)))
        (local.set $s2 (f64x2.add (local.get $s2) (local.get $c)))
        (local.set $s3 (f64x2.add (local.get $s3) (local.get $d)))
        (local.set $q0 (f64x2.add (local.get $q0) (f64x2.mul (local.get $a) (local.get $a))))
        (local.set $q1 (f64x2.add (local.get $q1) (f64x2.mul (local.get $b) (local.get $b))))
        (local.set $q2 (f64x2.add (local.get $q2) (f64x2.mul (local.get $c) (local.get $c))))
        (local.set $q3 (f64x2.add (local.get $q3) (f64x2.mul (local.get $d) (local.get $d))))
        (local.set $mn (f32x4.pmin (f32x4.pmin (local.get $mn) (local.get $v)) (local.get $v2)))
        (local.set $mx (f32x4.pmax (f32x4.pmax (local.get $mx) (local.get $v)) (local.get $v2)))
        (local.set $z (i32x4.sub (i32x4.sub (local.get $z)
          (f32x4.eq (local.get $v) (v128.const f32x4 0 0 0 0)))
          (f32x4.eq (local.get $v2) (v128.const f32x4 0 0 0 0))))
        (local.set $p (i32.add (local.get $p) (i32.const 32)))
        (br $next)))
    ;; A last group of 4 when n is not a multiple of 8.
    (if (i32.and (local.get $n) (i32.const 4))
      (then
        (local.set $v (v128.load (local.get $p)))
        (local.set $a (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $p))) (local.get $sh)))
        (local.set $b (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $p))) (local.get $sh)))
        (local.set $s0 (f64x2.add (local.get $s0) (local.get $a)))
        (local.set $s1 (f64x2.add (local.get $s1) (local.get $b)))
        (local.set $q0 (f64x2.add (local.get $q0) (f64x2.mul (local.get $a) (local.get $a))))
        (local.set $q1 (f64x2.add (local.get $q1) (f64x2.mul (local.get $b) (local.get $b))))
        (local.set $mn (f32x4.pmin (local.get $mn) (local.get $v)))
        (local.set $mx (f32x4.pmax (local.get $mx) (local.get $v)))
        (local.set $z (i32x4.sub (local.get $z) (f32x4.eq (local.get $v) (v128.const f32x4 0 0 0 0))))))
    (call $store
      (f64x2.add (f64x2.add (local.get $s0) (local.get $s1)) (f64x2.add (local.get $s2) (local.get $s3)))
      (f64x2.add (f64x2.add (local.get $q0) (local.get $q1)) (f64x2.add (local.get $q2) (local.get $q3)))
      (local.get $mn) (local.get $mx) (local.get $z)
      (i32x4.splat (i32.const 0)))
    (i32.store offset=52 (i32.const 0) (local.get $n)))

  ;; Moments of DATA[0 .. n) (n a multiple of 4) that skips NaN and ±Inf: a non-finite value is replaced by the
  ;; shift (as float32, `shift32`, which must equal `shift`), which adds exactly 0 to both sums and, being a value
  ;; already seen, moves neither extreme. Zeros are counted on the original values; `finite` counts finite values.
  (func (export "momentsChecked") (param $n i32) (param $shift f64) (param $shift32 f32)
    (local $p i32) (local $end i32)
    (local $v v128) (local $f v128) (local $a v128) (local $b v128) (local $sh v128) (local $sh32 v128)
    (local $s0 v128) (local $s1 v128) (local $q0 v128) (local $q1 v128)
    (local $mn v128) (local $mx v128) (local $z v128) (local $fc v128)
    (local.set $sh (f64x2.splat (local.get $shift)))
    (local.set $sh32 (f32x4.splat (local.get $shift32)))
    (local.set $mn (v128.const f32x4 inf inf inf inf))
    (local.set $mx (v128.const f32x4 -inf -inf -inf -inf))
    (local.set $p (i32.const 65536))
    (local.set $end (i32.add (i32.const 65536) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $v (v128.load (local.get $p)))
        ;; v - v is 0 exactly when v is finite (NaN and ±Inf give NaN).
        (local.set $f (f32x4.eq (f32x4.sub (local.get $v) (local.get $v)) (v128.const f32x4 0 0 0 0)))
        (local.set $z (i32x4.sub (local.get $z) (f32x4.eq (local.get $v) (v128.const f32x4 0 0 0 0))))
        (local.set $fc (i32x4.sub (local.get $fc) (local.get $f)))
        (local.set $v (v128.bitselect (local.get $v) (local.get $sh32) (local.get $f)))
        (local.set $a (f64x2.sub (f64x2.promote_low_f32x4 (local.get $v)) (local.get $sh)))
        (local.set $b (f64x2.sub
          (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))
          (local.get $sh)))
        (local.set $s0 (f64x2.add (local.get $s0) (local.get $a)))
        (local.set $s1 (f64x2.add (local.get $s1) (local.get $b)))
        (local.set $q0 (f64x2.add (local.get $q0) (f64x2.mul (local.get $a) (local.get $a))))
        (local.set $q1 (f64x2.add (local.get $q1) (f64x2.mul (local.get $b) (local.get $b))))
        (local.set $mn (f32x4.pmin (local.get $mn) (local.get $v)))
        (local.set $mx (f32x4.pmax (local.get $mx) (local.get $v)))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $next)))
    (call $store
      (f64x2.add (local.get $s0) (local.get $s1))
      (f64x2.add (local.get $q0) (local.get $q1))
      (local.get $mn) (local.get $mx) (local.get $z) (local.get $fc)))

  ;; Writes the RESULTS block from lane-wise partial results.
  (func $store (param $s v128) (param $q v128) (param $mn v128) (param $mx v128) (param $z v128) (param $fc v128)
    (f64.store offset=0 (i32.const 0)
      (f64.add (f64x2.extract_lane 0 (local.get $s)) (f64x2.extract_lane 1 (local.get $s))))
    (f64.store offset=8 (i32.const 0)
      (f64.add (f64x2.extract_lane 0 (local.get $q)) (f64x2.extract_lane 1 (local.get $q))))
    (v128.store offset=16 (i32.const 0) (local.get $mn))
    (v128.store offset=32 (i32.const 0) (local.get $mx))
    (i32.store offset=48 (i32.const 0) (call $hsum (local.get $z)))
    (i32.store offset=52 (i32.const 0) (call $hsum (local.get $fc))))

  (func $hsum (param $x v128) (result i32)
    (i32.add
      (i32.add (i32x4.extract_lane 0 (local.get $x)) (i32x4.extract_lane 1 (local.get $x)))
      (i32.add (i32x4.extract_lane 2 (local.get $x)) (i32x4.extract_lane 3 (local.get $x)))))

  ;; Histogram of DATA[0 .. n) (n a multiple of 4) added to the COUNTS tables, with the JS routine's bins. Lane k
  ;; of each vector counts into table k, so equal bins in neighbouring values do not wait on each other's stores.
  ;; Values outside [lo, hi], NaN included, go to slot `last + 1`, which the caller ignores.
  ;;
  ;; Parameters: `lo` and `scale` = bins / (hi - lo) as float64 (the JS routine's); `lo32` and `hi32` the smallest
  ;; float32 >= lo and the largest float32 <= hi (for a float32 v, `v >= lo32 && v <= hi32` is exactly
  ;; `v >= lo && v <= hi`); `last` = bins - 1; `loF` and `scaleF` lo and scale rounded to float32; `half` the
  ;; fast-path acceptance bound 0.5 - M described below (0 disables the fast path).
  ;;
  ;; Fast path, 4 values at a time in float32: t = (v - loF) * scaleF - 0.5 and r = t rounded to the nearest integer
  ;; (adding 1.5 * 2^23 leaves r in the low mantissa bits). When all 4 values are in range and |t - r| < half, r is
  ;; the bin: M bounds, with a 4x margin, the float32 rounding error of t plus the float64 rounding error of every
  ;; edge, both in bin units, so the exact position (v - lo) * bins / (hi - lo) lies strictly between edges r and
  ;; r + 1 as the float64 edges place them. That is where the JS routine's corrected estimate lands too.
  ;;
  ;; Exact path, for vectors with a value near an edge or out of range: the JS routine's own steps. The float64
  ;; estimate trunc((v - lo) * scale) clamped to [0, last], then b -= (v < EDGE_LO[b]), b += (v >= EDGE_HI[b]).
  ;; EDGE_LO[b] is edges[b] and EDGE_HI[b] is edges[b + 1] (+Inf for the last bin), each rounded up to float32,
  ;; which makes both tests exactly the JS routine's float64 tests for a float32 v.
  (func (export "histogram") (param $n i32) (param $lo f64) (param $scale f64) (param $lo32 f32) (param $hi32 f32)
    (param $last i32) (param $loF f32) (param $scaleF f32) (param $half f32)
    (local $p i32) (local $end i32) (local $o i32)
    (local $v v128) (local $in v128) (local $t v128) (local $y v128) (local $idx v128) (local $e v128) (local $u v128)
    (local $lov v128) (local $scv v128) (local $l32 v128) (local $h32 v128) (local $lof v128) (local $scf v128)
    (local $hv v128) (local $lastv v128) (local $dumv v128)
    (local.set $lov (f64x2.splat (local.get $lo)))
    (local.set $scv (f64x2.splat (local.get $scale)))
    (local.set $l32 (f32x4.splat (local.get $lo32)))
    (local.set $h32 (f32x4.splat (local.get $hi32)))
    (local.set $lof (f32x4.splat (local.get $loF)))
    (local.set $scf (f32x4.splat (local.get $scaleF)))
    (local.set $hv (f32x4.splat (local.get $half)))
    (local.set $lastv (i32x4.splat (local.get $last)))
    (local.set $dumv (i32x4.splat (i32.add (local.get $last) (i32.const 1))))
    (local.set $p (i32.const 65536))
    (local.set $end (i32.add (i32.const 65536) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $v (v128.load (local.get $p)))
        (local.set $in (v128.and
          (f32x4.ge (local.get $v) (local.get $l32))
          (f32x4.le (local.get $v) (local.get $h32))))
        (local.set $t (f32x4.sub
          (f32x4.mul (f32x4.sub (local.get $v) (local.get $lof)) (local.get $scf))
          (v128.const f32x4 0.5 0.5 0.5 0.5)))
        (local.set $y (f32x4.add (local.get $t) (v128.const f32x4 12582912 12582912 12582912 12582912)))
        (if (i32.eq
              (i8x16.bitmask (v128.and (local.get $in)
                (f32x4.lt
                  (f32x4.abs (f32x4.sub (local.get $t)
                    (f32x4.sub (local.get $y) (v128.const f32x4 12582912 12582912 12582912 12582912))))
                  (local.get $hv))))
              (i32.const 0xffff))
          (then
            ;; Byte offsets 16 r of the 4 slots, from the bits of y = 1.5 * 2^23 + r.
            (v128.store offset=64 (i32.const 0)
              (i32x4.shl
                (i32x4.sub (local.get $y) (v128.const i32x4 0x4b400000 0x4b400000 0x4b400000 0x4b400000))
                (i32.const 4))))
          (else
            ;; trunc((v - lo) * scale) in float64, lanes [v0, v1, v2, v3], clamped to [0, last].
            (local.set $idx (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
              (i32x4.trunc_sat_f64x2_s_zero
                (f64x2.mul (f64x2.sub (f64x2.promote_low_f32x4 (local.get $v)) (local.get $lov)) (local.get $scv)))
              (i32x4.trunc_sat_f64x2_s_zero
                (f64x2.mul
                  (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $p))) (local.get $lov))
                  (local.get $scv)))))
            (local.set $idx
              (i32x4.max_s (i32x4.min_s (local.get $idx) (local.get $lastv)) (v128.const i32x4 0 0 0 0)))
            ;; Gather each lane's edges (byte offset 4 b in the edge tables).
            (local.set $y (i32x4.shl (local.get $idx) (i32.const 2)))
            (local.set $o (i32x4.extract_lane 0 (local.get $y)))
            (local.set $e (v128.load32_zero offset=1179648 (local.get $o)))
            (local.set $u (v128.load32_zero offset=1245184 (local.get $o)))
            (local.set $o (i32x4.extract_lane 1 (local.get $y)))
            (local.set $e (v128.load32_lane offset=1179648 1 (local.get $o) (local.get $e)))
            (local.set $u (v128.load32_lane offset=1245184 1 (local.get $o) (local.get $u)))
            (local.set $o (i32x4.extract_lane 2 (local.get $y)))
            (local.set $e (v128.load32_lane offset=1179648 2 (local.get $o) (local.get $e)))
            (local.set $u (v128.load32_lane offset=1245184 2 (local.get $o) (local.get $u)))
            (local.set $o (i32x4.extract_lane 3 (local.get $y)))
            (local.set $e (v128.load32_lane offset=1179648 3 (local.get $o) (local.get $e)))
            (local.set $u (v128.load32_lane offset=1245184 3 (local.get $o) (local.get $u)))
            ;; b -= (v < lower edge); b += (v >= upper edge): comparison masks are -1 where true.
            (local.set $idx (i32x4.sub
              (i32x4.add (local.get $idx) (f32x4.lt (local.get $v) (local.get $e)))
              (f32x4.ge (local.get $v) (local.get $u))))
            (v128.store offset=64 (i32.const 0)
              (i32x4.shl (v128.bitselect (local.get $idx) (local.get $dumv) (local.get $in)) (i32.const 4)))))
        ;; One increment per lane, each in its own table (scalar loads of the stored offsets keep shuffles off the
        ;; critical port).
        (local.set $o (i32.load offset=64 (i32.const 0)))
        (i32.store offset=1310720 (local.get $o) (i32.add (i32.load offset=1310720 (local.get $o)) (i32.const 1)))
        (local.set $o (i32.load offset=68 (i32.const 0)))
        (i32.store offset=1310724 (local.get $o) (i32.add (i32.load offset=1310724 (local.get $o)) (i32.const 1)))
        (local.set $o (i32.load offset=72 (i32.const 0)))
        (i32.store offset=1310728 (local.get $o) (i32.add (i32.load offset=1310728 (local.get $o)) (i32.const 1)))
        (local.set $o (i32.load offset=76 (i32.const 0)))
        (i32.store offset=1310732 (local.get $o) (i32.add (i32.load offset=1310732 (local.get $o)) (i32.const 1)))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $next))))
)
