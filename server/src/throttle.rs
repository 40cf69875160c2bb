//! The per-client limit on started operations: a token bucket per client
//! ([`ClientKey`]) holding `per_minute` starts, refilled evenly over a minute, so a
//! client may burst up to the limit and then start one every `60/limit` s.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::client::ClientKey;
use crate::error::Error;

/// Above this many tracked clients, full buckets are forgotten.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug)]
pub struct StartThrottle {
    per_minute: u32,
    buckets: Mutex<HashMap<ClientKey, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl StartThrottle {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one start from `client`'s bucket, or says when to retry.
    pub fn take(&self, client: ClientKey, now: Instant) -> Result<(), Error> {
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second < capacity
            });
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = if per_second > 0.0 {
                Duration::from_secs_f64((1.0 - bucket.tokens) / per_second)
            } else {
                Duration::from_secs(60)
            };
            Err(Error::RateLimited {
                per_minute: self.per_minute,
                retry_after_secs: wait.as_secs().max(1),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_one_start_per_refill() {
        let throttle = StartThrottle::new(60);
        let client = ClientKey::of([127, 0, 0, 1].into());
        let other = ClientKey::of([127, 0, 0, 2].into());
        let t0 = Instant::now();
        for _ in 0..60 {
            throttle.take(client, t0).unwrap();
        }
        assert!(matches!(
            throttle.take(client, t0),
            Err(Error::RateLimited {
                retry_after_secs: 1,
                ..
            })
        ));
        throttle.take(other, t0).unwrap();
        throttle.take(client, t0 + Duration::from_secs(1)).unwrap();
        assert!(throttle.take(client, t0 + Duration::from_secs(1)).is_err());
    }
}
