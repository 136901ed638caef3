//! Min/max/last buckets computed at query time from every stored sample (nothing is
//! thinned at ingest): what GetSeries answers with `buckets = N`.

use crate::samples::Stored;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Axis {
    Step,
    Time,
}

impl Axis {
    /// The axis value of a sample.
    #[inline]
    pub fn of(self, s: &Stored) -> i64 {
        match self {
            Axis::Step => s.step,
            Axis::Time => s.time,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    pub x_start: f64,
    pub x_end: f64,
    pub min: f64,
    pub max: f64,
    pub last: f64,
    pub last_step: i64,
    pub last_time: i64,
    pub count: u64,
}

/// At most `n` buckets of equal width spanning [lo, hi] (the range asked for, or the
/// samples' own extent), from samples in any order. Empty buckets are left out. NaN
/// samples count, and are the `last` when last, but never the min or max (those are NaN
/// only if all are NaN). A bucket's `last` is its sample with the greatest axis value,
/// then the greatest `seq` (commit order).
pub fn bucketize(samples: &[Stored], axis: Axis, lo: Option<f64>, hi: Option<f64>, n: u32) -> Vec<Bucket> {
    let Some(first) = samples.first() else {
        return Vec::new();
    };
    let (mut min_x, mut max_x) = (axis.of(first), axis.of(first));
    for s in samples {
        let x = axis.of(s);
        min_x = min_x.min(x);
        max_x = max_x.max(x);
    }
    let mut bucketer = Bucketer::new(axis, lo, hi, min_x, max_x, n);
    for s in samples {
        bucketer.add(s);
    }
    bucketer.finish()
}

/// Min, max, last and count per bucket, fed one sample at a time in any order.
pub struct Bucketer {
    axis: Axis,
    lo: f64,
    hi: f64,
    width: f64,
    accs: Vec<Option<Acc>>,
}

struct Acc {
    min: f64,
    max: f64,
    last: Stored,
    last_x: i64,
    count: u64,
}

impl Bucketer {
    /// `n` buckets over [lo, hi], or where those are not given (or not finite), over the
    /// samples' extent [min_x, max_x].
    pub fn new(axis: Axis, lo: Option<f64>, hi: Option<f64>, min_x: i64, max_x: i64, n: u32) -> Bucketer {
        let lo = lo.filter(|v| v.is_finite()).unwrap_or(min_x as f64);
        let hi = hi.filter(|v| v.is_finite()).unwrap_or(max_x as f64);
        let n = n.max(1) as usize;
        let width = if hi > lo { (hi - lo) / n as f64 } else { 1.0 };
        let mut accs = Vec::new();
        accs.resize_with(n, || None);
        Bucketer {
            axis,
            lo,
            hi,
            width,
            accs,
        }
    }

    #[inline]
    pub fn add(&mut self, s: &Stored) {
        let n = self.accs.len();
        let x = self.axis.of(s);
        // `as usize` truncates toward zero and saturates (NaN and negatives give 0): the
        // same as floor().max(0.0) here, without a libm call per sample.
        let index = ((((x as f64) - self.lo) / self.width) as usize).min(n - 1);
        match &mut self.accs[index] {
            Some(a) => {
                // f64::min/max ignore NaN unless both are NaN.
                a.min = a.min.min(s.value);
                a.max = a.max.max(s.value);
                if (x, s.seq) > (a.last_x, a.last.seq) {
                    a.last = *s;
                    a.last_x = x;
                }
                a.count += 1;
            }
            slot => {
                *slot = Some(Acc {
                    min: s.value,
                    max: s.value,
                    last: *s,
                    last_x: x,
                    count: 1,
                })
            }
        }
    }

    /// The non-empty buckets in axis order, in a vector of their own size: collected in
    /// place, they kept the whole array's allocation (7 MB for 100,000 buckets), for
    /// every key of a request.
    pub fn finish(self) -> Vec<Bucket> {
        let n = self.accs.len();
        let (lo, hi, width) = (self.lo, self.hi, self.width);
        let mut out = Vec::with_capacity(self.accs.iter().filter(|a| a.is_some()).count());
        out.extend(self.accs.into_iter().enumerate().filter_map(|(index, acc)| {
            let a = acc?;
            let start = lo + index as f64 * width;
            Some(Bucket {
                x_start: start,
                x_end: if index + 1 == n { hi.max(start) } else { start + width },
                min: a.min,
                max: a.max,
                last: a.last.value,
                last_step: a.last.step,
                last_time: a.last.time,
                count: a.count,
            })
        }));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(n: i64, f: impl Fn(i64) -> f64) -> Vec<Stored> {
        (0..n)
            .map(|i| Stored {
                seq: i + 1,
                time: 1000 + i * 10,
                step: i,
                value: f(i),
            })
            .collect()
    }

    /// The obvious way: assign each point to its bucket, then aggregate each bucket.
    fn brute(points: &[Stored], axis: Axis, lo: f64, hi: f64, n: usize) -> Vec<(usize, f64, f64, f64, u64)> {
        let width = if hi > lo { (hi - lo) / n as f64 } else { 1.0 };
        let mut out: Vec<(usize, f64, f64, f64, u64)> = Vec::new();
        for i in 0..n {
            let members: Vec<&Stored> = points
                .iter()
                .filter(|p| (((axis.of(p) as f64 - lo) / width).floor().max(0.0) as usize).min(n - 1) == i)
                .collect();
            if members.is_empty() {
                continue;
            }
            let values = members.iter().map(|p| p.value);
            let min = values.clone().fold(f64::NAN, f64::min);
            let max = values.fold(f64::NAN, f64::max);
            out.push((
                i,
                min,
                max,
                members.last().map(|p| p.value).unwrap_or(f64::NAN),
                members.len() as u64,
            ));
        }
        out
    }

    fn check(points: &[Stored], axis: Axis, n: u32) {
        let lo = axis.of(points.first().unwrap()) as f64;
        let hi = axis.of(points.last().unwrap()) as f64;
        let got = bucketize(points, axis, None, None, n);
        let want = brute(points, axis, lo, hi, n as usize);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g.min == w.1 || (g.min.is_nan() && w.1.is_nan()),
                "min {} vs {}",
                g.min,
                w.1
            );
            assert!(g.max == w.2 || (g.max.is_nan() && w.2.is_nan()));
            assert!(g.last == w.3 || (g.last.is_nan() && w.3.is_nan()));
            assert_eq!(g.count, w.4);
        }
        assert_eq!(got.iter().map(|b| b.count).sum::<u64>(), points.len() as u64);
    }

    #[test]
    fn buckets_match_brute_force() {
        let wave = points(10_000, |i| ((i as f64) * 0.37).sin() * (i % 17) as f64);
        for n in [1, 2, 7, 100, 1000, 20_000] {
            check(&wave, Axis::Step, n);
            check(&wave, Axis::Time, n);
        }
        check(&points(1, |_| 3.0), Axis::Step, 10);
        check(&points(5, |i| if i == 2 { f64::NAN } else { i as f64 }), Axis::Step, 2);
        check(
            &points(50, |i| if i % 3 == 0 { f64::INFINITY } else { -(i as f64) }),
            Axis::Step,
            4,
        );
    }

    #[test]
    fn buckets_respect_the_asked_range() {
        let p = points(100, |i| i as f64);
        let b = bucketize(&p[10..=20], Axis::Step, Some(0.0), Some(99.0), 10);
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].min, b[0].max, b[0].count), (10.0, 19.0, 10));
        assert_eq!((b[1].min, b[1].last, b[1].count), (20.0, 20.0, 1));
        assert!(bucketize(&[], Axis::Step, None, None, 10).is_empty());
    }

    #[test]
    fn unordered_buckets_match_sorted_ones() {
        // Commit order is not axis order (steps reset, repeat); `last` follows (x, seq).
        let samples: Vec<Stored> = (0..5000i64)
            .map(|i| Stored {
                seq: i,
                step: (i * 7919) % 1013,
                time: 1000 + (i * 31) % 977,
                value: if i % 13 == 0 {
                    f64::NAN
                } else {
                    ((i as f64) * 0.37).sin()
                },
            })
            .collect();
        for axis in [Axis::Step, Axis::Time] {
            let mut sorted = samples.clone();
            sorted.sort_by_key(|s| axis.of(s));
            for n in [1, 3, 100, 1000] {
                for (lo, hi) in [(None, None), (Some(100.0), Some(900.0))] {
                    let want = bucketize(&sorted, axis, lo, hi, n);
                    let got = bucketize(&samples, axis, lo, hi, n);
                    assert_eq!(got.len(), want.len());
                    for (g, w) in got.iter().zip(&want) {
                        assert_eq!((g.x_start, g.x_end, g.count), (w.x_start, w.x_end, w.count));
                        assert_eq!((g.last_step, g.last_time), (w.last_step, w.last_time));
                        for (a, b) in [(g.min, w.min), (g.max, w.max), (g.last, w.last)] {
                            assert!(a == b || (a.is_nan() && b.is_nan()));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn all_nan_bucket_is_nan() {
        let p = points(3, |_| f64::NAN);
        let b = bucketize(&p, Axis::Step, None, None, 1);
        assert!(b[0].min.is_nan() && b[0].max.is_nan() && b[0].last.is_nan());
        assert_eq!(b[0].count, 3);
    }
}
