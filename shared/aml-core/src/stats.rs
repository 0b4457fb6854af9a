//! Exact binomial confidence bounds (Clopper-Pearson), for recall and false-positive rates
//! measured on a finite labelled set: the regularized incomplete beta function, computed by
//! its continued fraction, and its inverse by bisection.

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, 9 terms; relative error under 1e-14).
fn ln_gamma(x: f64) -> f64 {
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (index, coefficient) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += coefficient / (x + index as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The continued fraction of the incomplete beta function (modified Lentz).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut fraction = d;
    for m in 1..=10_000 {
        let m = m as f64;
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        for numerator in [
            even,
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + numerator * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + numerator / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            fraction *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    fraction
}

/// The regularized incomplete beta function `I_x(a, b)` for `a, b > 0`, `x` in [0, 1].
pub fn regularized_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// The `p`-quantile of the Beta(a, b) distribution.
pub fn beta_quantile(p: f64, a: f64, b: f64) -> f64 {
    let (mut low, mut high) = (0.0_f64, 1.0_f64);
    for _ in 0..200 {
        let middle = 0.5 * (low + high);
        if regularized_beta(middle, a, b) < p {
            low = middle;
        } else {
            high = middle;
        }
    }
    0.5 * (low + high)
}

/// The one-sided lower Clopper-Pearson bound on a proportion at `confidence` (e.g. 0.95):
/// the smallest true rate under which `successes` of `trials` or more would be seen with
/// probability at least `1 - confidence`. 0 with no success or no trial.
pub fn clopper_pearson_lower(successes: u64, trials: u64, confidence: f64) -> f64 {
    if successes == 0 || trials == 0 {
        return 0.0;
    }
    let alpha = 1.0 - confidence;
    if successes == trials {
        return alpha.powf(1.0 / trials as f64);
    }
    beta_quantile(alpha, successes as f64, (trials - successes + 1) as f64)
}

/// The two-sided Clopper-Pearson interval `[low, high]` at `confidence` (e.g. 0.95).
pub fn clopper_pearson_interval(successes: u64, trials: u64, confidence: f64) -> [f64; 2] {
    if trials == 0 {
        return [0.0, 1.0];
    }
    let alpha = 1.0 - confidence;
    let low = if successes == 0 {
        0.0
    } else {
        beta_quantile(
            alpha / 2.0,
            successes as f64,
            (trials - successes + 1) as f64,
        )
    };
    let high = if successes == trials {
        1.0
    } else {
        beta_quantile(
            1.0 - alpha / 2.0,
            (successes + 1) as f64,
            (trials - successes) as f64,
        )
    };
    [low, high]
}

/// Fewest positives that, all found, certify `recall` at `confidence`:
/// the smallest `n` with `(1 - confidence)^(1/n) >= recall`.
pub fn positives_needed(recall: f64, confidence: f64) -> u64 {
    if recall <= 0.0 || confidence <= 0.0 {
        return 1;
    }
    if recall >= 1.0 || confidence >= 1.0 {
        return u64::MAX;
    }
    let needed = ((1.0 - confidence).ln() / recall.ln()).ceil();
    let mut n = needed.max(1.0) as u64;
    while n > 1 && clopper_pearson_lower(n - 1, n - 1, confidence) >= recall {
        n -= 1;
    }
    while clopper_pearson_lower(n, n, confidence) < recall {
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P(X >= x) for X ~ Binomial(n, p), summed term by term in log space: an independent
    /// computation of what the beta function gives.
    fn binomial_tail(n: u64, x: u64, p: f64) -> f64 {
        (x..=n)
            .map(|k| {
                let log_choose = ln_gamma(n as f64 + 1.0)
                    - ln_gamma(k as f64 + 1.0)
                    - ln_gamma((n - k) as f64 + 1.0);
                (log_choose + k as f64 * p.ln() + (n - k) as f64 * (1.0 - p).ln()).exp()
            })
            .sum()
    }

    #[test]
    fn the_lower_bound_leaves_exactly_alpha_in_the_binomial_tail() {
        for (n, x) in [(20, 17), (150, 149), (600, 598), (1000, 990), (67, 60)] {
            let lower = clopper_pearson_lower(x, n, 0.95);
            let tail = binomial_tail(n, x, lower);
            assert!(
                (tail - 0.05).abs() < 1e-7,
                "n {n}, x {x}: tail {tail} at {lower}"
            );
        }
        let [low, high] = clopper_pearson_interval(7, 40, 0.95);
        assert!((binomial_tail(40, 7, low) - 0.025).abs() < 1e-7);
        assert!((1.0 - binomial_tail(40, 8, high) - 0.025).abs() < 1e-7);
    }

    #[test]
    fn certifying_99_percent_at_95_needs_299_clean_positives_and_600_allow_one_miss() {
        assert!(clopper_pearson_lower(299, 299, 0.95) >= 0.99);
        assert!(clopper_pearson_lower(298, 298, 0.95) < 0.99);
        assert!(clopper_pearson_lower(599, 600, 0.95) >= 0.99);
        assert!(clopper_pearson_lower(598, 600, 0.95) < 0.99);
        assert_eq!(positives_needed(0.99, 0.95), 299);
        assert_eq!(positives_needed(0.995, 0.95), 598);
        assert_eq!(clopper_pearson_interval(0, 10, 0.95)[0], 0.0);
        assert_eq!(clopper_pearson_interval(10, 10, 0.95)[1], 1.0);
    }
}
