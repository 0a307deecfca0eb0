//! `GET /metrics`: counters and a latency histogram in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the query latency buckets.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The server's counters (all monotonic but the gauges set from the gallery).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Queries answered in full, by endpoint: search, fine, verify.
    pub queries: [AtomicU64; 3],
    /// Requests answered with an error status or cut by an error frame.
    pub errors: AtomicU64,
    /// Queries refused because the queue was full (429).
    pub overloaded: AtomicU64,
    /// Probes scored.
    pub probes: AtomicU64,
    /// Batches scored (a batch is one chunk-major pass over the gallery).
    pub batches: AtomicU64,
    /// Templates enrolled through the service.
    pub enrolled: AtomicU64,
    /// Templates removed through the service.
    pub removed: AtomicU64,
    /// Request body bytes received.
    pub bytes_in: AtomicU64,
    /// Response body bytes sent.
    pub bytes_out: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_micros: AtomicU64,
}

/// Endpoint index into [`Metrics::queries`].
#[derive(Debug, Clone, Copy)]
pub enum Endpoint {
    /// `POST /v1/search`.
    Search = 0,
    /// `POST /v1/search/fine`.
    Fine = 1,
    /// `POST /v1/verify`.
    Verify = 2,
}

impl Metrics {
    /// Records one answered query and its latency (request received → last byte queued).
    pub fn query(&self, endpoint: Endpoint, latency: Duration) {
        self.queries[endpoint as usize].fetch_add(1, Ordering::Relaxed);
        let s = latency.as_secs_f64();
        if let Some(b) = BUCKETS.iter().position(|&ub| s <= ub) {
            self.latency_buckets[b].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_micros.fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
    }

    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition, with the gallery gauges `templates` and `version`.
    pub fn render(&self, templates: usize, version: u64) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut s = String::new();
        let _ = writeln!(s, "# HELP hers_queries_total Queries answered in full.\n# TYPE hers_queries_total counter");
        for (i, name) in ["search", "fine", "verify"].iter().enumerate() {
            let _ = writeln!(s, "hers_queries_total{{endpoint=\"{name}\"}} {}", get(&self.queries[i]));
        }
        let counters: [(&str, &str, &AtomicU64); 8] = [
            ("hers_errors_total", "Requests answered with an error.", &self.errors),
            ("hers_overloaded_total", "Queries refused with 429 (queue full).", &self.overloaded),
            ("hers_probes_total", "Probes scored.", &self.probes),
            ("hers_batches_total", "Chunk-major scoring passes.", &self.batches),
            ("hers_enrolled_total", "Templates enrolled through the service.", &self.enrolled),
            ("hers_removed_total", "Templates removed through the service.", &self.removed),
            ("hers_bytes_in_total", "Request body bytes received.", &self.bytes_in),
            ("hers_bytes_out_total", "Response body bytes sent.", &self.bytes_out),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", get(c));
        }
        let _ = writeln!(
            s,
            "# HELP hers_query_seconds Query latency, request to last byte.\n# TYPE hers_query_seconds histogram"
        );
        let mut cum = 0;
        for (ub, c) in BUCKETS.iter().zip(&self.latency_buckets) {
            cum += get(c);
            let _ = writeln!(s, "hers_query_seconds_bucket{{le=\"{ub}\"}} {cum}");
        }
        let count = get(&self.latency_count);
        let _ = writeln!(s, "hers_query_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(s, "hers_query_seconds_sum {}", get(&self.latency_micros) as f64 / 1e6);
        let _ = writeln!(s, "hers_query_seconds_count {count}");
        let _ = writeln!(
            s,
            "# HELP hers_templates Live templates.\n# TYPE hers_templates gauge\nhers_templates {templates}"
        );
        let _ = writeln!(
            s,
            "# HELP hers_gallery_version Current gallery version.\n# TYPE hers_gallery_version gauge\nhers_gallery_version {version}"
        );
        if let Some(cpu) = crate::cpu::process_cpu_seconds() {
            let _ = writeln!(
                s,
                "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
                 # TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {cpu}"
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_counts_every_query() {
        let m = Metrics::default();
        m.query(Endpoint::Search, Duration::from_millis(3));
        m.query(Endpoint::Search, Duration::from_millis(30));
        m.query(Endpoint::Verify, Duration::from_secs(100));
        let text = m.render(7, 9);
        assert!(text.contains("hers_query_seconds_bucket{le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("hers_query_seconds_bucket{le=\"0.05\"} 2\n"), "{text}");
        assert!(text.contains("hers_query_seconds_bucket{le=\"30\"} 2\n"), "{text}");
        assert!(text.contains("hers_query_seconds_bucket{le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("hers_queries_total{endpoint=\"search\"} 2\n"), "{text}");
        assert!(text.contains("hers_templates 7\n"), "{text}");
    }
}
