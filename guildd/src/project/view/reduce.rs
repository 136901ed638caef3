//! Reduce functions: a series to the one value a field shows.
//!
//! As the original defined them, over the samples in the order they were recorded:
//! `last`, `average`, `last_5_average` (the last five, or all when fewer), `steps` (last
//! step minus first step, as its documentation says), `steps0` (the last step: the
//! count of steps from 0), `duration` (seconds from the first sample to the last). Ours
//! besides: `first`, `min`, `max`. NaN samples count as samples (a `last` that is NaN is
//! NaN) but not in averages, minimums and maximums.

/// The reduce functions a field may name.
pub const NAMES: [&str; 9] = [
    "last",
    "first",
    "average",
    "last_5_average",
    "min",
    "max",
    "steps",
    "steps0",
    "duration",
];

/// One recorded sample: step, time in ms, value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub step: i64,
    pub time_ms: i64,
    pub value: f64,
}

/// The reduce of `samples` (in recorded order), or None when there is nothing to reduce
/// (no samples, no non-NaN value to average, or an unknown name). An empty name is
/// `last`.
pub fn reduce(name: &str, samples: &[Sample]) -> Option<f64> {
    let first = samples.first()?;
    let last = samples.last()?;
    match name {
        "" | "last" => Some(last.value),
        "first" => Some(first.value),
        "average" => mean(samples),
        "last_5_average" => mean(&samples[samples.len().saturating_sub(5)..]),
        "min" => finite(samples).reduce(f64::min),
        "max" => finite(samples).reduce(f64::max),
        "steps" => Some((last.step - first.step) as f64),
        "steps0" => Some(last.step as f64),
        "duration" => Some((last.time_ms - first.time_ms) as f64 / 1000.0),
        _ => None,
    }
}

/// Whether a reduce needs every sample, not only the last one.
pub fn needs_history(name: &str) -> bool {
    !matches!(name, "" | "last" | "steps0")
}

fn finite(samples: &[Sample]) -> impl Iterator<Item = f64> + '_ {
    samples.iter().map(|s| s.value).filter(|v| !v.is_nan())
}

fn mean(samples: &[Sample]) -> Option<f64> {
    let (sum, count) = finite(samples).fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (count > 0).then(|| sum / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(points: &[(i64, i64, f64)]) -> Vec<Sample> {
        points
            .iter()
            .map(|&(step, time_ms, value)| Sample { step, time_ms, value })
            .collect()
    }

    #[test]
    fn every_reduce() {
        let s = samples(&[
            (10, 1_000, 1.0),
            (20, 2_000, f64::NAN),
            (30, 3_500, 3.0),
            (40, 4_000, 4.0),
            (50, 5_000, 5.0),
            (60, 6_000, 6.0),
            (70, 66_000, 7.0),
        ]);
        assert_eq!(reduce("last", &s), Some(7.0));
        assert_eq!(reduce("", &s), Some(7.0));
        assert_eq!(reduce("first", &s), Some(1.0));
        assert_eq!(reduce("average", &s), Some(26.0 / 6.0));
        assert_eq!(reduce("last_5_average", &s), Some(5.0));
        assert_eq!(reduce("min", &s), Some(1.0));
        assert_eq!(reduce("max", &s), Some(7.0));
        assert_eq!(reduce("steps", &s), Some(60.0));
        assert_eq!(reduce("steps0", &s), Some(70.0));
        assert_eq!(reduce("duration", &s), Some(65.0));
        assert_eq!(reduce("median", &s), None);
    }

    #[test]
    fn few_or_no_samples() {
        assert_eq!(reduce("last", &[]), None);
        let one = samples(&[(3, 100, 0.5)]);
        assert_eq!(reduce("last_5_average", &one), Some(0.5));
        assert_eq!(reduce("duration", &one), Some(0.0));
        assert_eq!(reduce("steps", &one), Some(0.0));
        let nan = samples(&[(1, 1, f64::NAN)]);
        assert!(reduce("last", &nan).is_some_and(f64::is_nan));
        assert_eq!(reduce("average", &nan), None);
        assert_eq!(reduce("max", &nan), None);
    }
}
