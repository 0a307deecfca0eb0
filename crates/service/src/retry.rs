//! What the client retries, and how long: a server that says "not now" (429, 503) is asked again
//! after the `Retry-After` it named or an exponential, jittered back-off, and so is one whose
//! port refused the connection (a restarting server or cluster); everything else fails at once
//! with the server's own message. Bounded in attempts and in total time, so a client never
//! waits without end.

use std::time::{Duration, Instant};

use rand::Rng;

use crate::error::{Error, Result};

/// How often and how long to retry a retryable failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (1: never retry).
    pub attempts: u32,
    /// No retry starts later than this after the first try began.
    pub total: Duration,
    /// The first back-off; each next one doubles, up to `max_delay`.
    pub first_delay: Duration,
    /// The longest single back-off (a server's `Retry-After` beyond it is cut to it).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 10 tries within 60 s, back-off from 0.2 s doubling to 5 s.
    fn default() -> Self {
        Self {
            attempts: 10,
            total: Duration::from_secs(60),
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Never retries.
    pub fn none() -> Self {
        Self { attempts: 1, ..Self::default() }
    }

    /// Runs `op` until it succeeds, fails with an error that is not retryable
    /// ([`Error::is_retryable`]), or the policy's bounds are spent; the last error then says
    /// how many tries it took. `on_retry` hears of each retry (its error and the wait).
    pub fn run<T>(&self, op: impl FnMut() -> Result<T>, on_retry: impl FnMut(&Error, Duration)) -> Result<T> {
        self.run_if(Error::is_retryable, op, on_retry)
    }

    /// [`RetryPolicy::run`] with the caller's idea of what is retryable (e.g. a whole search
    /// may be sent again when its answer was cut, since it changes nothing on the server).
    pub fn run_if<T>(
        &self,
        retryable: impl Fn(&Error) -> bool,
        mut op: impl FnMut() -> Result<T>,
        mut on_retry: impl FnMut(&Error, Duration),
    ) -> Result<T> {
        let start = Instant::now();
        let mut tries = 0u32;
        loop {
            tries += 1;
            let e = match op() {
                Ok(v) => return Ok(v),
                Err(e) if !retryable(&e) => return Err(e),
                Err(e) => e,
            };
            let wait = self.delay(tries, e.retry_after());
            if tries >= self.attempts.max(1) || start.elapsed() + wait > self.total {
                return Err(match tries {
                    1 => e,
                    _ => Error::GaveUp { tries, seconds: start.elapsed().as_secs_f64(), last: Box::new(e) },
                });
            }
            on_retry(&e, wait);
            std::thread::sleep(wait);
        }
    }

    /// The wait before try `tries + 1`: the server's `Retry-After` when it named one, else the
    /// exponential back-off; either with up to 50 % jitter added (so clients refused together
    /// do not come back together), never above `max_delay`.
    pub(crate) fn delay(&self, tries: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.first_delay.saturating_mul(1u32 << (tries - 1).min(16));
        let base = retry_after.unwrap_or(backoff).min(self.max_delay);
        let jitter = base.mul_f64(rand::rng().random_range(0.0..0.5));
        (base + jitter).min(self.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> Error {
        Error::Unreachable { url: "http://x".into(), message: "refused".into() }
    }

    fn http(status: u16) -> Error {
        Error::Http { url: "http://x".into(), status, message: "m".into(), retry_after: None }
    }

    fn quick(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            total: Duration::from_secs(10),
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        }
    }

    #[test]
    fn retries_429_503_and_refusals_until_success() {
        let mut answers = vec![Err(http(429)), Err(http(503)), Err(refused()), Ok(7)].into_iter();
        let mut retries = 0;
        let got = quick(5).run(|| answers.next().expect("an answer"), |_, _| retries += 1);
        assert_eq!(got.expect("succeeds on the fourth try"), 7);
        assert_eq!(retries, 3);
    }

    #[test]
    fn fails_at_once_on_what_a_retry_cannot_fix() {
        for status in [400, 401, 404, 409, 410, 413] {
            let mut tries = 0;
            let e = quick(5)
                .run(
                    || -> Result<()> {
                        tries += 1;
                        Err(http(status))
                    },
                    |_, _| {},
                )
                .expect_err("fails");
            assert_eq!(tries, 1, "status {status}");
            assert!(matches!(e, Error::Http { status: s, .. } if s == status));
        }
    }

    #[test]
    fn gives_up_after_the_bound_naming_the_tries() {
        let mut tries = 0;
        let e = quick(3)
            .run(
                || -> Result<()> {
                    tries += 1;
                    Err(refused())
                },
                |_, _| {},
            )
            .expect_err("gives up");
        assert_eq!(tries, 3);
        let text = e.to_string();
        assert!(text.contains("3 tries") && text.contains("refused"), "{text}");
    }

    #[test]
    fn waits_follow_retry_after_within_the_cap() {
        let p = RetryPolicy { max_delay: Duration::from_secs(5), ..RetryPolicy::default() };
        for _ in 0..100 {
            let d = p.delay(1, Some(Duration::from_secs(1)));
            assert!(d >= Duration::from_secs(1) && d <= Duration::from_millis(1500), "{d:?}");
            let d = p.delay(12, None);
            assert!(d <= Duration::from_secs(5), "{d:?}");
        }
    }
}
