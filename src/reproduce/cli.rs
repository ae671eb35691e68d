//! The command line shared by the `reproduce` examples (parsed by [`crate::cli`]).

use super::{all, run_all, Config};
use crate::cli::{self, CliError, Flag};
use std::path::PathBuf;

/// What the command line sets: the [`Config`] and the reproductions to run (empty: all).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Output directory, seed, sizes, data and threads.
    pub config: Config,
    /// `--only`'s names.
    pub only: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            config: Config {
                out: PathBuf::from("out/reproduce"),
                seed: 0,
                quick: false,
                idx_dir: None,
                threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
            only: Vec::new(),
        }
    }
}

/// The flags: `--out`, `--seed`, `--quick`, `--idx`, `--threads`, and `--only` when `with_only`
/// (the examples that run one fixed reproduction have no `--only`).
pub fn flags(with_only: bool) -> Vec<Flag<Settings>> {
    let mut flags = vec![
        Flag::value("--out", "DIR", |s: &mut Settings, v| cli::parsed(v).map(|p| s.config.out = p)),
        Flag::value("--seed", "N", |s, v| cli::parsed(v).map(|n| s.config.seed = n)),
        Flag::switch("--quick", |s| s.config.quick = true),
        Flag::value("--idx", "DIR", |s, v| cli::parsed(v).map(|p| s.config.idx_dir = Some(p))),
        Flag::value("--threads", "T", |s, v| cli::positive(v).map(|t| s.config.threads = t)),
    ];
    if with_only {
        let only = Flag::value("--only", "NAME,…", |s: &mut Settings, v| {
            let names: Vec<&str> = all().iter().map(|r| r.0).collect();
            cli::list_of(v, &names).map(|o| s.only = o)
        });
        flags.insert(0, only);
    }
    flags
}

/// The settings from `args` (without the program name); `fixed`, when not empty, is the
/// reproduction the example always runs, and `--only` is then not a flag.
pub fn parse(fixed: &[&str], args: impl IntoIterator<Item = String>) -> Result<Settings, CliError> {
    let mut settings = Settings::default();
    cli::parse(&flags(fixed.is_empty()), &mut settings, args)?;
    if !fixed.is_empty() {
        settings.only = fixed.iter().map(|s| s.to_string()).collect();
    }
    Ok(settings)
}

/// Parses the command line (see [`flags`]), runs the reproductions (`fixed`, when not empty,
/// replaces `--only`), prints the claims table and exits: 0 if every claim passed, 1 if one
/// failed, 2 on bad arguments or an error.
pub fn main_with(fixed: &[&str]) -> ! {
    let program = match fixed.first() {
        Some(name) => format!("reproduce_{name}"),
        None => "reproduce".to_string(),
    };
    let settings = match parse(fixed, std::env::args().skip(1)) {
        Ok(settings) => settings,
        Err(CliError::Help) => {
            println!("{}", cli::usage(&program, &flags(fixed.is_empty())));
            std::process::exit(0);
        }
        Err(e) => cli::fail(&program, &e.to_string()),
    };
    let (config, only) = (settings.config, settings.only);
    let claims = run_all(&config, &only).unwrap_or_else(|e| cli::fail(&program, &e.to_string()));
    println!("\n{:<62} {:<22} {:<58} result", "claim", "section", "measured");
    for (_, c) in &claims {
        println!(
            "{:<62} {:<22} {:<58} {}",
            c.claim,
            c.section,
            c.measured,
            if c.passed { "pass" } else { "FAIL" }
        );
    }
    let failed = claims.iter().filter(|(_, c)| !c.passed).count();
    println!(
        "\n{} claims, {} passed, {failed} failed; report: {}",
        claims.len(),
        claims.len() - failed,
        config.out.join("report.md").display()
    );
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(fixed: &[&str], args: &[&str]) -> Result<Settings, CliError> {
        parse(fixed, args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn the_ci_line_and_the_defaults_parse_as_before() {
        let s = run(&[], &["--quick", "--out", "target/reproduce-quick"]).unwrap();
        assert!(s.config.quick && s.only.is_empty());
        assert_eq!(s.config.out, PathBuf::from("target/reproduce-quick"));
        let s = run(&[], &["--only", "hessian,convergence", "--seed", "3", "--threads", "2"]);
        let s = s.unwrap();
        assert_eq!(
            (s.only.join(","), s.config.seed, s.config.threads),
            ("hessian,convergence".into(), 3, 2)
        );
        let s = run(&[], &[]).unwrap();
        assert_eq!((s.config.out, s.config.quick), (PathBuf::from("out/reproduce"), false));
        assert_eq!(run(&["hessian"], &[]).unwrap().only, vec!["hessian".to_string()]);
    }

    #[test]
    fn a_fixed_example_has_no_only_flag_and_does_not_list_it() {
        // The old message was "unknown flag --only (expected --only, …)".
        let error = run(&["hessian"], &["--only", "x"]).unwrap_err();
        assert_eq!(
            error,
            CliError::UnknownFlag {
                flag: "--only".into(),
                expected: "--out, --seed, --quick, --idx, --threads".into()
            }
        );
    }

    #[test]
    fn unknown_reproductions_and_bad_values_are_errors() {
        let error = run(&[], &["--only", "hessian,x"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "--only: 'x' is not one of hessian, fisher_ggn, empirical_fisher, invariance, \
             convergence, autoencoder, spectra"
        );
        assert!(matches!(run(&[], &["--threads", "0"]), Err(CliError::BadValue { .. })));
        assert!(matches!(run(&[], &["--seed", "-1"]), Err(CliError::BadValue { .. })));
        assert!(matches!(run(&[], &["--out", "--quick"]), Err(CliError::MissingValue { .. })));
    }
}
