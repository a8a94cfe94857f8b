//! The generic cell rate algorithm (GCRA), as pure arithmetic: the same rules the Redis script
//! (`gcra.lua`) applies, used here for the in-memory limits and to read the script's answer.
//!
//! A limit of `quota` units per `period` with `burst` has an emission interval
//! `T = period / quota` and a tolerance `burst * T`. Each bucket keeps a theoretical arrival
//! time (TAT). A request of `cost` units is admitted when `max(TAT, now) + cost * T - now` is at
//! most the tolerance; then the TAT moves to that value. So an idle caller may spend `burst`
//! units at once, and over any span `s` at most `burst + quota * s / period` units pass.

/// A limit in the algorithm's terms, in the time unit of the caller (ns here, µs in Redis).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// The emission interval: the time one cost unit occupies.
    pub interval: f64,
    /// The tolerance: `burst * interval`.
    pub tolerance: f64,
}

impl Params {
    /// The parameters of `quota` units per `period` (any time unit) with `burst`.
    pub fn new(quota: u64, period: f64, burst: u64) -> Self {
        let interval = period / quota.max(1) as f64;
        Params {
            interval,
            tolerance: interval * burst.max(1) as f64,
        }
    }
}

/// One limit's state after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    /// Units that could still be spent now.
    pub remaining: u64,
    /// Time until the bucket is full again, in the caller's unit.
    pub reset: u64,
}

/// The outcome of charging several limits at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Whether every limit had room (then all were charged).
    pub allowed: bool,
    /// When denied: the time until the request would be admitted; else 0.
    pub retry_after: u64,
    /// Each limit's new TAT (unchanged when denied).
    pub tats: Vec<f64>,
    /// Each limit's state after the decision.
    pub states: Vec<State>,
}

/// The state of a limit whose TAT is `tat` at `now`.
pub fn state(p: Params, tat: f64, now: f64) -> State {
    let ahead = (tat - now).max(0.0);
    let remaining = ((p.tolerance - ahead) / p.interval).floor().max(0.0);
    State {
        remaining: remaining as u64,
        reset: ahead.ceil() as u64,
    }
}

/// Charges `cost` against every limit (`params[i]` with stored TAT `tats[i]`, `None` for a
/// bucket never used or expired) at `now`, all or nothing.
pub fn charge(params: &[Params], tats: &[Option<f64>], cost: u64, now: f64) -> Outcome {
    let cost = cost as f64;
    let current: Vec<f64> = tats.iter().map(|t| t.unwrap_or(now).max(now)).collect();
    let mut retry = 0.0f64;
    for (p, tat) in params.iter().zip(&current) {
        let wait = tat + cost * p.interval - p.tolerance - now;
        retry = retry.max(wait);
    }
    let allowed = retry <= 0.0;
    let tats: Vec<f64> = if allowed {
        params
            .iter()
            .zip(&current)
            .map(|(p, t)| t + cost * p.interval)
            .collect()
    } else {
        current
    };
    let states = params.iter().zip(&tats).map(|(p, t)| state(*p, *t, now)).collect();
    Outcome {
        allowed,
        retry_after: if allowed { 0 } else { retry.ceil() as u64 },
        tats,
        states,
    }
}

/// The index of the limit that matters most to the caller: among `states`, the one with the
/// least remaining (the first on a tie).
pub fn tightest(states: &[State]) -> usize {
    states
        .iter()
        .enumerate()
        .min_by_key(|(i, s)| (s.remaining, *i))
        .map_or(0, |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: f64 = 1e9;

    #[test]
    fn an_idle_caller_gets_the_burst_then_the_rate() {
        let p = [Params::new(10, 60.0 * SEC, 5)];
        let mut tat = None;
        let mut admitted = 0;
        for _ in 0..20 {
            let out = charge(&p, &[tat], 1, 0.0);
            if out.allowed {
                admitted += 1;
                tat = Some(out.tats[0]);
            }
        }
        assert_eq!(admitted, 5);
        // One interval (6 s) later exactly one more unit fits.
        let later = 6.0 * SEC;
        let out = charge(&p, &[tat], 1, later);
        assert!(out.allowed);
        let out2 = charge(&p, &[Some(out.tats[0])], 1, later);
        assert!(!out2.allowed);
        assert_eq!(out2.retry_after, (6.0 * SEC) as u64);
    }

    #[test]
    fn one_denying_limit_charges_none() {
        let p = [Params::new(100, SEC, 100), Params::new(1, SEC, 1)];
        let first = charge(&p, &[None, None], 1, 0.0);
        assert!(first.allowed);
        let tats: Vec<Option<f64>> = first.tats.iter().copied().map(Some).collect();
        let second = charge(&p, &tats, 1, 0.0);
        assert!(!second.allowed);
        assert_eq!(second.tats, first.tats, "no limit moved");
        assert_eq!(second.states[0].remaining, 99);
        assert_eq!(tightest(&second.states), 1);
    }

    #[test]
    fn weighted_cost_spends_several_units() {
        let p = [Params::new(10, SEC, 10)];
        let out = charge(&p, &[None], 7, 0.0);
        assert!(out.allowed);
        assert_eq!(out.states[0].remaining, 3);
        let again = charge(&p, &[Some(out.tats[0])], 4, 0.0);
        assert!(!again.allowed);
        assert_eq!(again.retry_after, (0.1 * SEC) as u64, "one unit's interval");
    }

    #[test]
    fn remaining_and_reset_of_a_fresh_bucket() {
        let p = Params::new(60, 60.0 * SEC, 60);
        let out = charge(&[p], &[None], 1, 5.0 * SEC);
        assert_eq!(out.states[0].remaining, 59);
        assert_eq!(out.states[0].reset, SEC as u64);
        let idle = state(p, 0.0, 100.0 * SEC);
        assert_eq!(
            idle,
            State {
                remaining: 60,
                reset: 0
            }
        );
    }

    #[test]
    fn over_any_span_at_most_burst_plus_rate() {
        // 10 per second, burst 3, requests every 10 ms for 2 s: at most 3 + 10 * 2 admitted.
        let p = [Params::new(10, SEC, 3)];
        let mut tat = None;
        let mut admitted = 0;
        for step in 0..=200 {
            let now = step as f64 * 0.01 * SEC;
            let out = charge(&p, &[tat], 1, now);
            if out.allowed {
                admitted += 1;
                tat = Some(out.tats[0]);
            }
        }
        assert!(admitted <= 23, "{admitted}");
        assert!(admitted >= 22, "{admitted}");
    }
}
