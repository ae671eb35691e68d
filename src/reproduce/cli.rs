//! The command line shared by the `reproduce` examples.

use super::{all, run_all, Config};
use std::path::PathBuf;

fn fail(message: &str) -> ! {
    eprintln!("reproduce: {message}");
    std::process::exit(2);
}

/// Parses `--only`, `--out`, `--seed`, `--quick`, `--idx`, `--threads`, runs the reproductions (`fixed`, when
/// not empty, replaces `--only`), prints the claims table and exits: 0 if every claim passed,
/// 1 if one failed, 2 on bad arguments or an error.
pub fn main_with(fixed: &[&str]) -> ! {
    let mut config = Config {
        out: PathBuf::from("out/reproduce"),
        seed: 0,
        quick: false,
        idx_dir: None,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut only: Vec<String> = fixed.iter().map(|s| s.to_string()).collect();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--only" if fixed.is_empty() => only = value().split(',').map(String::from).collect(),
            "--out" => config.out = PathBuf::from(value()),
            "--seed" => {
                config.seed = value().parse().unwrap_or_else(|_| fail("--seed needs a number"))
            }
            "--quick" => config.quick = true,
            "--idx" => config.idx_dir = Some(PathBuf::from(value())),
            "--threads" => {
                config.threads = value()
                    .parse()
                    .ok()
                    .filter(|&t| t > 0)
                    .unwrap_or_else(|| fail("--threads needs a positive number"))
            }
            other => fail(&format!(
                "unknown flag {other} (expected --only, --out, --seed, --quick, --idx, --threads)"
            )),
        }
    }
    let names: Vec<&str> = all().iter().map(|r| r.0).collect();
    if let Some(bad) = only.iter().find(|o| !names.contains(&o.as_str())) {
        fail(&format!("unknown reproduction '{bad}' (expected one of {})", names.join(", ")));
    }
    let claims = run_all(&config, &only).unwrap_or_else(|e| fail(&e.to_string()));
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
