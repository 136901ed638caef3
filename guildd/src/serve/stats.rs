//! One serve's counters and recent timings: what `GET /stats` and ListServes report.
//!
//! Counters cover the serve's whole life; percentiles and rates come from the last
//! [`WINDOW`] answered requests, so a long-lived serve reports how it does now.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Recent requests kept for percentiles.
pub const WINDOW: usize = 10_000;
/// Predictions per second are counted over this span.
pub const RATE_SPAN: Duration = Duration::from_secs(10);

#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    latency: Duration,
    /// The worker's own time for the request (None when it never reached the worker).
    batch: Option<Duration>,
    instances: u32,
    ok: bool,
}

pub struct Stats {
    started: Instant,
    requests: AtomicU64,
    errors: AtomicU64,
    instances: AtomicU64,
    recent: Mutex<VecDeque<Sample>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: Instant::now(),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            instances: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::with_capacity(WINDOW)),
        }
    }
}

impl Stats {
    /// Records one answered `POST /run`: `ok` for a 2xx answer.
    pub fn record(&self, latency: Duration, batch: Option<Duration>, instances: usize, ok: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if ok {
            self.instances.fetch_add(instances as u64, Ordering::Relaxed);
        } else {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() == WINDOW {
                recent.pop_front();
            }
            recent.push_back(Sample {
                at: Instant::now(),
                latency,
                batch,
                instances: instances.min(u32::MAX as usize) as u32,
                ok,
            });
        }
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The `GET /stats` document (without the serve's identity, which the caller adds).
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let samples: Vec<Sample> = self
            .recent
            .lock()
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default();
        let now = Instant::now();
        let mut latencies: Vec<f64> = samples.iter().filter(|s| s.ok).map(|s| ms(s.latency)).collect();
        let mut batches: Vec<f64> = samples.iter().filter_map(|s| s.batch).map(ms).collect();
        let span = RATE_SPAN.min(now.duration_since(self.started)).as_secs_f64();
        let recent_instances: u64 = samples
            .iter()
            .filter(|s| s.ok && now.duration_since(s.at) <= RATE_SPAN)
            .map(|s| u64::from(s.instances))
            .sum();
        let rate = if span > 0.0 {
            recent_instances as f64 / span
        } else {
            0.0
        };
        let mut out = serde_json::Map::new();
        out.insert("requests".into(), self.requests().into());
        out.insert("errors".into(), self.errors().into());
        out.insert("instances".into(), self.instances.load(Ordering::Relaxed).into());
        out.insert(
            "uptime_s".into(),
            round(now.duration_since(self.started).as_secs_f64()).into(),
        );
        out.insert("latency_ms".into(), summary(&mut latencies));
        out.insert("batch_time_ms".into(), summary(&mut batches));
        out.insert("predictions_per_second".into(), round(rate).into());
        out
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Three decimals: microseconds in milliseconds.
fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// `{count, mean, p50, p90, p99, max}` of the values (nearest-rank percentiles).
fn summary(values: &mut [f64]) -> serde_json::Value {
    if values.is_empty() {
        return serde_json::json!({"count": 0});
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let rank = |p: f64| values[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
    let mean = values.iter().sum::<f64>() / n as f64;
    serde_json::json!({
        "count": n,
        "mean": round(mean),
        "p50": round(rank(0.50)),
        "p90": round(rank(0.90)),
        "p99": round(rank(0.99)),
        "max": round(values[n - 1]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut values: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = summary(&mut values);
        assert_eq!(s["p50"], 50.0);
        assert_eq!(s["p90"], 90.0);
        assert_eq!(s["p99"], 99.0);
        assert_eq!(s["max"], 100.0);
        assert_eq!(s["count"], 100);
        let s = summary(&mut [7.0]);
        assert_eq!(s["p50"], 7.0);
        assert_eq!(s["p99"], 7.0);
    }

    #[test]
    fn errors_count_but_do_not_skew_latency() {
        let stats = Stats::default();
        stats.record(Duration::from_millis(2), Some(Duration::from_millis(1)), 3, true);
        stats.record(Duration::from_micros(10), None, 5, false);
        let json = stats.to_json();
        assert_eq!(json["requests"], 2);
        assert_eq!(json["errors"], 1);
        assert_eq!(json["instances"], 3);
        assert_eq!(json["latency_ms"]["count"], 1);
        assert_eq!(json["latency_ms"]["p50"], 2.0);
        assert_eq!(json["batch_time_ms"]["p50"], 1.0);
    }

    #[test]
    fn the_window_is_bounded() {
        let stats = Stats::default();
        for _ in 0..WINDOW + 10 {
            stats.record(Duration::from_millis(1), None, 1, true);
        }
        assert_eq!(stats.recent.lock().unwrap().len(), WINDOW);
        assert_eq!(stats.requests(), (WINDOW + 10) as u64);
    }
}
