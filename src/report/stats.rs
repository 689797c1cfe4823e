//! The statistics behind the reports: Wilson intervals for rates, pass@k, Welch intervals for
//! differences of means, a seeded bootstrap over trials, and the exact McNemar test.
//! Every interval here is a two-sided 95% interval.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use serde::Serialize;
use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, StudentsT};

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Resamples drawn by the bootstrap; fixed so reports are reproducible.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;
/// The bootstrap's seed: the same data always gives the same interval (ChaCha12, whose stream
/// rand_chacha keeps fixed across versions, unlike `StdRng`'s).
pub const BOOTSTRAP_SEED: u64 = 0x5eed_f1c5;

/// Wilson score interval for `k` successes in `n` trials. `n == 0` gives the whole [0, 1].
pub fn wilson(k: u32, n: u32) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n, z) = (k as f64, n as f64, Z95);
    let p = k / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Newcombe's hybrid score interval for `p_b - p_a` (method 10), built from both Wilson
/// intervals: it behaves at 0 and 1 where the Wald interval does not.
pub fn newcombe_diff(k_a: u32, n_a: u32, k_b: u32, n_b: u32) -> (f64, f64) {
    let pa = if n_a == 0 { 0.0 } else { k_a as f64 / n_a as f64 };
    let pb = if n_b == 0 { 0.0 } else { k_b as f64 / n_b as f64 };
    let (la, ua) = wilson(k_a, n_a);
    let (lb, ub) = wilson(k_b, n_b);
    let d = pb - pa;
    let lower = d - ((pb - lb).powi(2) + (ua - pa).powi(2)).sqrt();
    let upper = d + ((ub - pb).powi(2) + (pa - la).powi(2)).sqrt();
    (lower.max(-1.0), upper.min(1.0))
}

/// The unbiased pass@k estimate (Chen et al. 2021) from `c` resolved of `n` repeats: the chance
/// that at least one of `k` repeats drawn from them resolves. `None` when `k > n` or `k == 0`.
pub fn pass_at_k(n: u32, c: u32, k: u32) -> Option<f64> {
    if k == 0 || k > n {
        return None;
    }
    if n - c < k {
        return Some(1.0);
    }
    // 1 - C(n-c, k) / C(n, k) as a running product, stable for any n.
    let mut fail = 1.0;
    for i in (n - c + 1)..=n {
        fail *= 1.0 - k as f64 / i as f64;
    }
    Some(1.0 - fail)
}

/// Mean, sample standard deviation and range of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation; `None` for fewer than two values.
    pub sd: Option<f64>,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for an empty sample.
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd = (n > 1).then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
        Some(Spread {
            n,
            mean,
            sd,
            median: median(values),
            min: values.iter().cloned().fold(f64::INFINITY, f64::min),
            max: values.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        })
    }

    /// The mean as an estimate with its standard error, for Welch intervals.
    pub fn estimate(&self) -> Estimate {
        Estimate {
            value: self.mean,
            var: self.sd.map(|sd| sd * sd / self.n as f64),
            df: (self.n as f64 - 1.0).max(0.0),
        }
    }
}

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// An estimate with the variance of its sampling error and the degrees of freedom behind it;
/// `var` is `None` when the sample cannot tell (a single value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub var: Option<f64>,
    pub df: f64,
}

impl Estimate {
    /// The sum of independent estimates (e.g. per-problem means summed into a suite score),
    /// with Welch–Satterthwaite degrees of freedom.
    pub fn sum(parts: &[Estimate]) -> Estimate {
        let value = parts.iter().map(|e| e.value).sum();
        let var: Option<f64> = parts.iter().map(|e| e.var).sum();
        let df = match var {
            Some(v) if v > 0.0 => {
                let denom: f64 =
                    parts.iter().filter_map(|e| e.var.filter(|&v| v > 0.0).map(|v| v * v / e.df.max(1.0))).sum();
                v * v / denom
            }
            _ => parts.iter().map(|e| e.df).fold(f64::INFINITY, f64::min),
        };
        Estimate { value, var, df }
    }

    /// `b - a` for independent estimates.
    pub fn diff(a: &Estimate, b: &Estimate) -> Estimate {
        let neg_a = Estimate { value: -a.value, ..*a };
        Estimate::sum(&[neg_a, *b])
    }

    /// The 95% interval (Student t with `df`); `None` when the variance is unknown.
    pub fn interval(&self) -> Option<(f64, f64)> {
        let var = self.var?;
        if var <= 0.0 {
            return Some((self.value, self.value));
        }
        let t = t_quantile_975(self.df)?;
        let half = t * var.sqrt();
        Some((self.value - half, self.value + half))
    }
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom.
pub fn t_quantile_975(df: f64) -> Option<f64> {
    if df.is_nan() || df <= 0.0 {
        return None;
    }
    if df > 1e6 {
        return Some(Z95);
    }
    StudentsT::new(0.0, 1.0, df).ok().map(|t| t.inverse_cdf(0.975))
}

/// A percentile bootstrap: `stat` is computed on `resamples` resamples drawn by `draw`, with a
/// fixed seed; returns the 2.5% and 97.5% percentiles.
pub fn bootstrap<F>(mut stat: F) -> (f64, f64)
where
    F: FnMut(&mut ChaCha12Rng) -> f64,
{
    let mut rng = ChaCha12Rng::seed_from_u64(BOOTSTRAP_SEED);
    let mut values: Vec<f64> = (0..BOOTSTRAP_RESAMPLES).map(|_| stat(&mut rng)).filter(|v| v.is_finite()).collect();
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.025), at(0.975))
}

/// The mean of a resample (with replacement) of `values`.
pub fn resample_mean(values: &[f64], rng: &mut impl Rng) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let n = values.len();
    (0..n).map(|_| values[rng.gen_range(0..n)]).sum::<f64>() / n as f64
}

/// The exact one-sided McNemar test: `b` pairs went pass → fail, `c` went fail → pass.
/// Returns P(X ≥ b) for X ~ Binomial(b + c, ½): small when passes turned into failures more
/// often than chance allows.
pub fn mcnemar_one_sided(b: u32, c: u32) -> f64 {
    if b == 0 {
        return 1.0;
    }
    let x = Binomial::new(0.5, u64::from(b) + u64::from(c)).expect("½ is a probability");
    // P(X ≥ b) = P(X > b - 1).
    x.sf(u64::from(b) - 1).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn wilson_matches_published_values() {
        // Newcombe (1998), table I: 81/263 → 0.2553–0.3662; 15/148 → 0.0624–0.1605.
        let (lo, hi) = wilson(81, 263);
        assert!(close(lo, 0.2553, 5e-4) && close(hi, 0.3662, 5e-4), "{lo} {hi}");
        let (lo, hi) = wilson(15, 148);
        assert!(close(lo, 0.0624, 5e-4) && close(hi, 0.1605, 5e-4), "{lo} {hi}");
        // The edges stay inside [0, 1] and are not degenerate.
        let (lo, hi) = wilson(0, 10);
        assert_eq!(lo, 0.0);
        assert!(close(hi, 0.2775, 5e-4), "{hi}");
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }

    #[test]
    fn newcombe_matches_published_example() {
        // Newcombe (1998), table II example (56/70 vs 48/80): difference 0.2 → 0.0524–0.3339.
        let (lo, hi) = newcombe_diff(48, 80, 56, 70);
        assert!(close(lo, 0.0524, 5e-4) && close(hi, 0.3339, 5e-4), "{lo} {hi}");
    }

    #[test]
    fn pass_at_k_is_the_unbiased_estimator() {
        assert_eq!(pass_at_k(4, 0, 1), Some(0.0));
        assert_eq!(pass_at_k(4, 4, 2), Some(1.0));
        assert!(close(pass_at_k(4, 1, 1).unwrap(), 0.25, 1e-12));
        // 1 - C(3,2)/C(4,2) = 1 - 3/6
        assert!(close(pass_at_k(4, 1, 2).unwrap(), 0.5, 1e-12));
        // 1 - C(8,3)/C(10,3) = 1 - 56/120
        assert!(close(pass_at_k(10, 2, 3).unwrap(), 64.0 / 120.0, 1e-12));
        assert_eq!(pass_at_k(2, 1, 3), None);
    }

    #[test]
    fn spread_and_welch_interval() {
        let s = Spread::of(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!((s.mean, s.median, s.min, s.max), (2.5, 2.5, 1.0, 4.0));
        assert!(close(s.sd.unwrap(), 1.290_994, 1e-6));
        // Mean difference of [1,2,3,4] vs [3,4,5,6]: 2 ± t(6)·sqrt(2·1.6667/4).
        let b = Spread::of(&[3.0, 4.0, 5.0, 6.0]).unwrap();
        let d = Estimate::diff(&s.estimate(), &b.estimate());
        assert!(close(d.df, 6.0, 1e-9), "{}", d.df);
        let (lo, hi) = d.interval().unwrap();
        let half = 2.446_912 * (2.0 * 1.666_667_f64 / 4.0).sqrt();
        assert!(close(lo, 2.0 - half, 1e-4) && close(hi, 2.0 + half, 1e-4), "{lo} {hi}");
        // One value: no spread, no interval.
        assert_eq!(Spread::of(&[5.0]).unwrap().estimate().interval(), None);
        // Identical constant samples: a zero-width interval at the difference.
        let c = Spread::of(&[2.0, 2.0]).unwrap().estimate();
        let e = Spread::of(&[3.0, 3.0]).unwrap().estimate();
        assert_eq!(Estimate::diff(&c, &e).interval(), Some((1.0, 1.0)));
    }

    #[test]
    fn mcnemar_exact_tail() {
        assert_eq!(mcnemar_one_sided(0, 5), 1.0);
        assert!(close(mcnemar_one_sided(4, 0), 1.0 / 16.0, 1e-12));
        // P(X >= 8 | n = 10) = (45 + 10 + 1) / 1024
        assert!(close(mcnemar_one_sided(8, 2), 56.0 / 1024.0, 1e-12));
        assert!(mcnemar_one_sided(400, 300) < 1e-3);
        // The upper tail of a large n stays finite: P(X >= 10 | n = 10) = 2^-10.
        assert!(close(mcnemar_one_sided(10, 0), 1.0 / 1024.0, 1e-15));
        assert!(close(mcnemar_one_sided(1, 1), 0.75, 1e-12));
    }

    #[test]
    fn bootstrap_is_reproducible_and_covers_the_mean() {
        let v: Vec<f64> = (0..50).map(|i| i as f64).collect();
        let a = bootstrap(|rng| resample_mean(&v, rng));
        let b = bootstrap(|rng| resample_mean(&v, rng));
        assert_eq!(a, b);
        assert!(a.0 < 24.5 && 24.5 < a.1, "{a:?}");
        // Pinned: a change of generator or sampling would move every bootstrapped interval.
        assert_eq!(a, (20.62, 28.36));
    }
}
