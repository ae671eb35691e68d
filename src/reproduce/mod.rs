//! Reproductions of the paper's claims: each checks numbers against what the paper says, writes
//! figures (SVG) and raw numbers (CSV) to an output directory, and returns its [`Claim`]s.
//!
//! | module | paper | what |
//! |---|---|---|
//! | [`hessian`] | 8, 8.1.2, 8.1.3 | `H = G + C + Cᵀ + activation term` per layer block |
//! | [`fisher_ggn`] | 9.2, 11.1 | `F = G` for natural parameters, the gaps, MC Fisher error |
//! | [`empirical_fisher`] | 11.1 | the `F̄^ξ` iteration fails where the Fisher's converges |
//! | [`invariance`] | 12 | parameterization invariance to first order, the `α²` discrepancy |
//! | [`convergence`] | 14 | Theorems 5 and 6 against exact and Monte-Carlo curves |
//! | [`autoencoder`] | 10, 11.2 | the deep autoencoder on CURVES-style data: SGD, Adam, HF, NG |
//! | [`spectra`] | 8.1 | Lanczos and SLQ spectra of H, G, F, F̄ during autoencoder training |

pub mod autoencoder;
pub mod cli;
pub mod convergence;
pub mod empirical_fisher;
pub mod fisher_ggn;
pub mod hessian;
pub mod invariance;
pub mod spectra;

use crate::plot::{Heatmap, LinePlot};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Settings shared by every reproduction.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where figures, CSV files and the report go.
    pub out: PathBuf,
    /// Base seed.
    pub seed: u64,
    /// Small sizes for CI (seconds instead of minutes).
    pub quick: bool,
    /// A directory with IDX files (`train-images-idx3-ubyte[.gz]`) for the autoencoder.
    pub idx_dir: Option<PathBuf>,
    /// Threads for the autoencoder's training (row blocks of each batch; the results equal
    /// one thread's to round-off). Defaults to the machine's available parallelism.
    pub threads: usize,
}

/// One checked claim.
#[derive(Clone, Debug)]
pub struct Claim {
    /// Short statement.
    pub claim: String,
    /// Paper section.
    pub section: String,
    /// What was measured.
    pub measured: String,
    /// What the paper says.
    pub paper: String,
    /// Whether the measurement agrees.
    pub passed: bool,
}

impl Claim {
    /// A claim.
    pub fn new(claim: &str, section: &str, measured: String, paper: &str, passed: bool) -> Self {
        Claim {
            claim: claim.into(),
            section: section.into(),
            measured,
            paper: paper.into(),
            passed,
        }
    }
}

/// The output of one reproduction: claims, and Markdown (figures are linked from it).
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// The claims checked.
    pub claims: Vec<Claim>,
    /// Markdown paragraphs for the report.
    pub markdown: String,
}

impl Outcome {
    /// Adds a paragraph.
    pub fn text(&mut self, s: &str) {
        self.markdown.push_str(s);
        self.markdown.push_str("\n\n");
    }
}

/// Errors of a reproduction (boxed: they come from every crate and from IO).
pub type Error = Box<dyn std::error::Error>;

/// Writes a line plot as `name.svg` and links it from the outcome's Markdown.
pub fn save_plot(
    config: &Config,
    outcome: &mut Outcome,
    name: &str,
    plot: &LinePlot,
) -> Result<(), Error> {
    save(config, outcome, name, &plot.title, plot.to_svg())
}

/// Writes a heat map as `name.svg` and links it.
pub fn save_heatmap(
    config: &Config,
    outcome: &mut Outcome,
    name: &str,
    map: &Heatmap<'_>,
) -> Result<(), Error> {
    save(config, outcome, name, &map.title, map.to_svg())
}

fn save(
    config: &Config,
    outcome: &mut Outcome,
    name: &str,
    title: &str,
    svg: String,
) -> Result<(), Error> {
    let path = config.out.join(format!("{name}.svg"));
    std::fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
    let _ = writeln!(outcome.markdown, "![{title}]({name}.svg)\n");
    Ok(())
}

/// Writes named columns to `name.csv`.
pub fn save_csv(config: &Config, name: &str, columns: &[(&str, &[f64])]) -> Result<(), Error> {
    let path = config.out.join(format!("{name}.csv"));
    optim::theory::csv::write_columns(&path, columns)?;
    Ok(())
}

/// A reproduction by name.
pub type Runner = fn(&Config) -> Result<Outcome, Error>;

/// Every reproduction, in order: `(name, title, runner)`.
pub fn all() -> Vec<(&'static str, &'static str, Runner)> {
    vec![
        ("hessian", "1. Hessian decomposition (Sections 8, 8.1.2)", hessian::run),
        ("fisher_ggn", "2. Fisher vs GGN (Section 9.2)", fisher_ggn::run),
        (
            "empirical_fisher",
            "3. The empirical Fisher failure (Section 11.1)",
            empirical_fisher::run,
        ),
        ("invariance", "4. Parameterization invariance (Section 12)", invariance::run),
        ("convergence", "5. Convergence theory (Section 14)", convergence::run),
        ("autoencoder", "6. Deep autoencoder training (Sections 10, 11.2)", autoencoder::run),
        ("spectra", "7. Spectra of H, G, F and F̄ during training (Section 8.1)", spectra::run),
    ]
}

/// Runs the named reproductions (all when `only` is empty), printing progress, writing
/// `report.md` and `claims.csv`, and returns every claim with the section title it belongs to.
pub fn run_all(config: &Config, only: &[String]) -> Result<Vec<(String, Claim)>, Error> {
    std::fs::create_dir_all(&config.out).map_err(|e| format!("{}: {e}", config.out.display()))?;
    let mut report = String::from("# natgrad: reproducing Martens (JMLR 2020)\n\n");
    let _ = writeln!(
        report,
        "Seed {}, {} mode, {} thread(s) for training. Generated by `cargo run --release \
         --example reproduce`.\n",
        config.seed,
        if config.quick { "quick" } else { "full" },
        config.threads
    );
    let mut claims = Vec::new();
    let selected: Vec<_> = all()
        .into_iter()
        .filter(|(name, _, _)| only.is_empty() || only.iter().any(|o| o == name))
        .collect();
    for (i, (name, title, runner)) in selected.iter().enumerate() {
        eprintln!("[{}/{}] {title} …", i + 1, selected.len());
        let start = std::time::Instant::now();
        let outcome = runner(config).map_err(|e| format!("{name}: {e}"))?;
        let failed = outcome.claims.iter().filter(|c| !c.passed).count();
        eprintln!(
            "[{}/{}] {title}: {} claims, {failed} failed, {:.1} s",
            i + 1,
            selected.len(),
            outcome.claims.len(),
            start.elapsed().as_secs_f64()
        );
        let _ = writeln!(report, "## {title}\n\n{}", claims_table(&outcome.claims));
        report.push_str(&outcome.markdown);
        claims.extend(outcome.claims.into_iter().map(|c| (title.to_string(), c)));
    }
    std::fs::write(config.out.join("report.md"), report)?;
    let mut csv = String::from("section,claim,measured,paper,passed\n");
    for (_, c) in &claims {
        let q = |s: &str| format!("\"{}\"", s.replace('"', "'"));
        let _ = writeln!(
            csv,
            "{},{},{},{},{}",
            q(&c.section),
            q(&c.claim),
            q(&c.measured),
            q(&c.paper),
            c.passed
        );
    }
    std::fs::write(config.out.join("claims.csv"), csv)?;
    Ok(claims)
}

/// A Markdown table of claims.
pub fn claims_table(claims: &[Claim]) -> String {
    let mut s =
        String::from("| claim | section | measured | paper | result |\n|---|---|---|---|---|\n");
    for c in claims {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            c.claim,
            c.section,
            c.measured,
            c.paper,
            if c.passed { "pass" } else { "FAIL" }
        );
    }
    s
}

/// The least-squares slope of `log y` on `log x`.
pub fn log_log_slope(points: &[(f64, f64)]) -> f64 {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0)
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    let n = pts.len() as f64;
    let (mx, my) =
        (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
    let sxy: f64 = pts.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = pts.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    sxy / sxx
}
