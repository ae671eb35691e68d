//! The command line: flags, their values and defaults (see `natgrad::cli`).

use natgrad::cli::{self, Flag};

pub struct Args {
    pub workloads: Vec<String>,
    pub ops: Vec<String>,
    pub dtypes: Vec<String>,
    pub threads: Vec<usize>,
    pub runs: usize,
    pub json: Option<String>,
}

/// The ops `--op` accepts.
pub const OPS: [&str; 9] =
    ["loss", "gradient", "jvp", "vjp", "hvp", "ggn", "fisher", "empirical_fisher", "ggn_repeated"];

/// The flags, one line each (see `natgrad::cli`).
pub fn flags() -> Vec<Flag<Args>> {
    vec![
        Flag::value("--workload", "w1,w2,w3", |a: &mut Args, v| {
            cli::list_of(v, &["w1", "w2", "w3"]).map(|w| a.workloads = w)
        }),
        Flag::value("--op", "OP,…", |a, v| cli::list_of(v, &OPS).map(|o| a.ops = o)),
        Flag::value("--dtype", "f64,f32", |a, v| {
            cli::list_of(v, &["f64", "f32"]).map(|d| a.dtypes = d)
        }),
        Flag::value("--threads", "T,…", |a, v| {
            cli::list(v, cli::positive).map(|t| a.threads = t)
        }),
        Flag::value("--runs", "N", |a, v| cli::positive(v).map(|n| a.runs = n)),
        Flag::value("--json", "PATH", |a, v| {
            a.json = Some(v.into());
            Ok(())
        }),
    ]
}

pub fn defaults() -> Args {
    Args {
        workloads: vec!["w1".into(), "w2".into(), "w3".into()],
        ops: OPS.map(String::from).to_vec(),
        dtypes: vec!["f64".into(), "f32".into()],
        threads: vec![1],
        runs: 10,
        json: None,
    }
}
