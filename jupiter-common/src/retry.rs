//! How every retry in Jupiter waits: capped exponential backoff with
//! jitter. Many senders that lost the same peer (a worker restarting, a
//! link cut) then spread their retries out instead of hitting it in step
//! when it comes back.

use rand::Rng;
use std::time::Duration;

/// The pause before each next attempt: doubling from `first` up to `cap`,
/// each drawn uniformly from the upper half of its step.
#[derive(Debug, Clone)]
pub struct Backoff {
    step: Duration,
    cap: Duration,
}

impl Backoff {
    pub fn new(first: Duration, cap: Duration) -> Self {
        Self { step: first, cap }
    }

    /// The next pause; the step after it doubles, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.cap);
        let half = step / 2;
        half + rand::thread_rng().gen_range(Duration::ZERO..=half)
    }

    /// Waits the next pause.
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_with_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(8), Duration::from_millis(100));
        let steps = [8u64, 16, 32, 64, 100, 100, 100];
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let mut b = backoff.clone();
            for step in steps {
                let d = b.next_delay();
                let step = Duration::from_millis(step);
                assert!(
                    d >= step / 2 && d <= step,
                    "{d:?} within the upper half of {step:?}"
                );
                seen.insert(d);
            }
        }
        assert!(seen.len() > 20, "pauses vary: {} distinct", seen.len());
        assert!(backoff.next_delay() <= Duration::from_millis(8));
    }
}
