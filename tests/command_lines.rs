//! The examples' command lines end to end (issue 17, items 6 and 7): each bad line below makes the
//! example binary exit with status 2 and print exactly one line to standard error, naming the
//! problem, before doing any work. The parser itself is unit-tested in `natgrad::cli` and
//! `natgrad::reproduce::cli`.
//!
//! The binaries are the ones `cargo test` builds next to this test's (`target/<profile>/examples/`);
//! the test first runs `cargo build --examples` for its profile, a no-op when they are fresh, so
//! `cargo test --test command_lines` alone works too.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// `target/<profile>/examples`, with the examples built.
fn examples_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // This test runs as target/<profile>/deps/command_lines-<hash>.
        let exe = std::env::current_exe().expect("test binary path");
        let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>");
        let target_dir = profile_dir.parent().expect("target directory");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_string(),
            Some(other) => other.to_string(),
            None => panic!("no profile directory in {}", exe.display()),
        };
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--examples", "--profile", &profile, "--target-dir"])
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build --examples");
        assert!(status.success(), "cargo build --examples failed");
        profile_dir.join("examples")
    })
}

/// Runs an example with `args`; returns its exit status and standard error.
fn run(example: &str, args: &[&str]) -> (Option<i32>, String) {
    let path = examples_dir().join(format!("{example}{}", std::env::consts::EXE_SUFFIX));
    let output = Command::new(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Asserts exit status 2 and the one stderr line `expected`.
fn assert_usage_error(example: &str, args: &[&str], expected: &str) {
    let (code, stderr) = run(example, args);
    assert_eq!(code, Some(2), "{example} {args:?}: stderr {stderr:?}");
    assert_eq!(stderr, format!("{expected}\n"), "{example} {args:?}");
}

#[test]
fn bench_refuses_unknown_values_zero_threads_and_an_unwritable_json_path() {
    assert_usage_error(
        "bench",
        &["--workload", "w4"],
        "bench: --workload: 'w4' is not one of w1, w2, w3",
    );
    assert_usage_error(
        "bench",
        &["--op", "gradient,hessian"],
        "bench: --op: 'hessian' is not one of loss, gradient, jvp, vjp, hvp, ggn, fisher, \
         empirical_fisher, ggn_repeated",
    );
    assert_usage_error(
        "bench",
        &["--dtype", "f16"],
        "bench: --dtype: 'f16' is not one of f64, f32",
    );
    assert_usage_error(
        "bench",
        &["--threads", "1,0"],
        "bench: --threads: '0' is not valid: must be at least 1",
    );
    // Checked before anything is timed, so this returns at once.
    let json = std::env::temp_dir().join("natgrad-no-such-dir").join("bench.json");
    let json = json.to_str().unwrap();
    let (code, stderr) = run("bench", &["--workload", "w3", "--runs", "1", "--json", json]);
    assert_eq!(code, Some(2), "stderr {stderr:?}");
    assert!(
        stderr.starts_with(&format!("bench: --json {json}: cannot write: "))
            && stderr.lines().count() == 1,
        "{stderr:?}"
    );
}

#[test]
fn quickstart_refuses_any_flag() {
    assert_usage_error(
        "quickstart",
        &["--seed", "3"],
        "quickstart: unknown flag --seed (expected no flags)",
    );
}

#[test]
fn export_curvature_does_not_take_a_flag_as_a_value() {
    assert_usage_error(
        "export_curvature",
        &["--out", "--seed", "3"],
        "export_curvature: --out needs a value DIR (found the flag --seed)",
    );
    assert_usage_error(
        "export_curvature",
        &["--layers", "4,0,3"],
        "export_curvature: --layers: '0' is not valid: must be at least 1",
    );
}

/// A batch whose inputs cannot be allocated (32 TB of `x`) is a one-line error, not an abort.
#[test]
fn export_curvature_refuses_a_batch_that_does_not_fit_in_memory() {
    let (code, stderr) = run("export_curvature", &["--batch", "1000000000000", "--out", "/tmp"]);
    assert_eq!(code, Some(2), "stderr {stderr:?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(
        stderr.starts_with(
            "export_curvature: --batch 1000000000000: the inputs do not fit in memory"
        ),
        "{stderr:?}"
    );
}

#[test]
fn reproduce_examples_name_the_flags_they_have() {
    assert_usage_error(
        "reproduce_hessian",
        &["--only", "x"],
        "reproduce_hessian: unknown flag --only (expected --out, --seed, --quick, --idx, --threads)",
    );
    assert_usage_error(
        "reproduce",
        &["--quick", "--only", "hesian"],
        "reproduce: --only: 'hesian' is not one of hessian, fisher_ggn, empirical_fisher, \
         invariance, convergence, autoencoder, spectra",
    );
}
