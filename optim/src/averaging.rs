//! Iterate averaging (Section 14.3): Polyak's uniform average and the exponentially decayed
//! average with `β_k = min(1 − 1/k, β_max)`.

use crate::error::{check_range, Result};

/// `θ̄_k = (1/k) Σ_{j=1..k} θ_j`, updated as `θ̄_k = θ̄_{k−1} + (θ_k − θ̄_{k−1}) / k`.
#[derive(Clone, Debug, Default)]
pub struct PolyakAverage {
    mean: Vec<f64>,
    count: usize,
}

impl PolyakAverage {
    /// An empty average.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `θ_k` and returns `θ̄_k`.
    pub fn update(&mut self, theta: &[f64]) -> &[f64] {
        if self.count == 0 || self.mean.len() != theta.len() {
            self.mean = theta.to_vec();
            self.count = 1;
        } else {
            self.count += 1;
            let w = 1.0 / self.count as f64;
            for (m, t) in self.mean.iter_mut().zip(theta) {
                *m += w * (t - *m);
            }
        }
        &self.mean
    }

    /// The current average.
    pub fn value(&self) -> &[f64] {
        &self.mean
    }
}

/// `θ̄_k = β_k θ̄_{k−1} + (1 − β_k) θ_k` with `β_k = min(1 − 1/k, β_max)`: the uniform average
/// while `k ≤ 1/(1 − β_max)`, then an exponential one that forgets early iterates.
#[derive(Clone, Debug)]
pub struct ExponentialAverage {
    beta_max: f64,
    mean: Vec<f64>,
    count: usize,
}

impl ExponentialAverage {
    /// `β_max ∈ [0, 1)`.
    pub fn new(beta_max: f64) -> Result<Self> {
        check_range("ExponentialAverage", "beta_max", beta_max, 0.0, true, 1.0 - f64::EPSILON)?;
        Ok(ExponentialAverage { beta_max, mean: Vec::new(), count: 0 })
    }

    /// Adds `θ_k` and returns `θ̄_k`.
    pub fn update(&mut self, theta: &[f64]) -> &[f64] {
        self.count += 1;
        let beta = (1.0 - 1.0 / self.count as f64).min(self.beta_max);
        if self.mean.len() != theta.len() {
            self.mean = vec![0.0; theta.len()];
        }
        for (m, t) in self.mean.iter_mut().zip(theta) {
            *m = beta * *m + (1.0 - beta) * t;
        }
        &self.mean
    }

    /// The current average.
    pub fn value(&self) -> &[f64] {
        &self.mean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polyak_average_is_the_arithmetic_mean() {
        let mut avg = PolyakAverage::new();
        for k in 1..=10 {
            avg.update(&[k as f64, (k * k) as f64]);
        }
        // Closed forms: mean of 1..10 = 5.5, mean of squares = 385/10.
        assert!((avg.value()[0] - 5.5).abs() < 1e-14 && (avg.value()[1] - 38.5).abs() < 1e-13);
    }

    #[test]
    fn exponential_average_is_uniform_then_geometric() {
        let mut avg = ExponentialAverage::new(0.75).unwrap();
        // β_k = 0, ½, ⅔, ¾, ¾, …: uniform over the first four iterates.
        for k in 1..=4 {
            avg.update(&[k as f64]);
        }
        assert!((avg.value()[0] - 2.5).abs() < 1e-14);
        avg.update(&[10.0]);
        assert!((avg.value()[0] - (0.75 * 2.5 + 0.25 * 10.0)).abs() < 1e-14);
        assert!(ExponentialAverage::new(1.0).is_err() && ExponentialAverage::new(-0.1).is_err());
    }
}
