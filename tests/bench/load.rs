//! Load generation: closed loops (N workers, each sends its next request when the previous one
//! answered) and paced open loops (requests at fixed times; latency counted from the scheduled
//! time, so a stalled server cannot hide its queue), with percentiles from a sorted Vec.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Latencies and outcomes of one measurement.
#[derive(Debug, Default)]
pub struct Sample {
    pub latencies: Vec<Duration>,
    pub ok: u64,
    pub failed: u64,
    pub elapsed: Duration,
}

impl Sample {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The p-th percentile (0..=1) in milliseconds.
    pub fn p_ms(&mut self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        self.latencies.sort_unstable();
        let n = self.latencies.len();
        let idx = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
        self.latencies[idx].as_secs_f64() * 1000.0
    }
}

/// `workers` loops calling `f(i)` for i = 0, 1, … until `count` calls were made (if given) or
/// `duration` has passed (if given). `f` returns whether the call succeeded.
pub async fn closed<F, Fut>(workers: usize, count: Option<u64>, duration: Option<Duration>, f: F) -> Sample
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = duration.map(|d| start + d);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (f, next) = (f.clone(), next.clone());
        set.spawn(async move {
            let mut s = Sample::default();
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if count.is_some_and(|c| i >= c) {
                    break;
                }
                let t = Instant::now();
                if f(i).await {
                    s.ok += 1;
                    s.latencies.push(t.elapsed());
                } else {
                    s.failed += 1;
                }
            }
            s
        });
    }
    let mut total = Sample::default();
    while let Some(r) = set.join_next().await {
        if let Ok(s) = r {
            total.ok += s.ok;
            total.failed += s.failed;
            total.latencies.extend(s.latencies);
        }
    }
    total.elapsed = start.elapsed();
    total
}

/// `count` calls at `rate` per second, each on its own task; latency from the scheduled time.
pub async fn paced<F, Fut>(rate: f64, count: u64, f: F) -> Sample
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let f = Arc::new(f);
    let start = tokio::time::Instant::now();
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..count {
        let at = start + period.mul_f64(i as f64);
        tokio::time::sleep_until(at).await;
        let f = f.clone();
        set.spawn(async move {
            let ok = f(i).await;
            (ok, at.elapsed())
        });
    }
    let mut s = Sample::default();
    while let Some(r) = set.join_next().await {
        if let Ok((ok, lat)) = r {
            if ok {
                s.ok += 1;
                s.latencies.push(lat);
            } else {
                s.failed += 1;
            }
        }
    }
    s.elapsed = start.elapsed();
    s
}

/// A client for load: many idle connections kept, no proxy lookups.
pub fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()?)
}
