//! Reconnect delays: exponential with full jitter. Kept apart from the
//! session so the one rule for "how long to wait" lives in one place.

use crate::rng::Rng;

/// Tuning for [`Backoff`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackoffOptions {
    /// The first ceiling, in ms; each failure doubles it.
    pub initial_ms: u64,
    /// The ceiling stops growing here.
    pub cap_ms: u64,
}

impl Default for BackoffOptions {
    fn default() -> Self {
        Self {
            initial_ms: 500,
            cap_ms: 20_000,
        }
    }
}

/// Exponential backoff: the ceiling is `initial * 2^attempt`, capped; the
/// delay is drawn uniformly from `0..=ceiling` ("full jitter", applied after
/// the cap) so that many clients cut off together do not return together.
#[derive(Debug, Clone)]
pub struct Backoff {
    options: BackoffOptions,
    attempt: u32,
}

impl Backoff {
    /// A backoff at its shortest delay.
    pub fn new(options: BackoffOptions) -> Self {
        Self {
            options,
            attempt: 0,
        }
    }

    /// The ceiling for the next delay, before jitter.
    pub fn ceiling_ms(&self) -> u64 {
        let factor = 1u64.checked_shl(self.attempt).unwrap_or(u64::MAX);
        self.options
            .initial_ms
            .saturating_mul(factor)
            .min(self.options.cap_ms)
    }

    /// Draws the next delay and counts the attempt.
    pub fn next_delay_ms(&mut self, rng: &mut Rng) -> u64 {
        let delay = rng.below_or_eq(self.ceiling_ms());
        self.attempt = self.attempt.saturating_add(1).min(63);
        delay
    }

    /// Failures in a row so far.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Back to the first ceiling: the last connection was healthy.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_to_the_cap_and_delays_stay_under_it() {
        let mut backoff = Backoff::new(BackoffOptions::default());
        let mut rng = Rng::new(7);
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            let ceiling = backoff.ceiling_ms();
            ceilings.push(ceiling);
            assert!(backoff.next_delay_ms(&mut rng) <= ceiling);
        }
        assert_eq!(&ceilings[..7], [500, 1000, 2000, 4000, 8000, 16000, 20000]);
        assert_eq!(ceilings[9], 20_000);
        backoff.reset();
        assert_eq!(backoff.ceiling_ms(), 500);
    }

    #[test]
    fn jitter_spreads_delays_across_the_window() {
        let mut backoff = Backoff::new(BackoffOptions::default());
        for _ in 0..20 {
            backoff.next_delay_ms(&mut Rng::new(0));
        }
        let mut rng = Rng::new(42);
        let delays: Vec<u64> = (0..200)
            .map(|_| backoff.clone().next_delay_ms(&mut rng))
            .collect();
        assert!(delays.iter().any(|&d| d < 5_000));
        assert!(delays.iter().any(|&d| d > 15_000));
    }
}
