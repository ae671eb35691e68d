//! The report: measured rows and the targets summary.

/// One measured row, for the targets summary.
pub struct Row {
    pub workload: &'static str,
    pub op: String,
    pub dtype: String,
    pub threads: usize,
    pub median: f64,
    /// The fastest run, seconds.
    pub min: f64,
    /// The op's matrix-product FLOPs.
    pub flops: f64,
    /// The median GEMM rate of the pairs (GFLOP/s).
    pub gemm: f64,
    pub fraction: f64,
    /// Median of paired time ratios to the one-thread f64 gradient (threads = 1 only).
    pub ratio: f64,
    /// Median of paired one-thread / this-row time ratios (threads > 1 only).
    pub speedup: f64,
    /// The op's matrix-product FLOPs over the gradient's: the ratio it would have at equal
    /// GEMM efficiency.
    pub floor: f64,
}

/// The targets against this run's numbers (those measured in this run only), with the
/// FLOP-count floor of each ratio target and, beside the 2-thread speedup, the throughput of two
/// concurrent dgemms measured at the start.
pub fn print_targets(rows: &[Row], memory_ratio: f64, two_gemms: Option<f64>) {
    let find = |w: &str, op: &str, dtype: &str, threads: usize| {
        rows.iter()
            .find(|r| r.workload == w && r.op == op && r.dtype == dtype && r.threads == threads)
    };
    let mut lines: Vec<(String, String, bool)> = Vec::new();
    let mut check =
        |name: String, measured: String, holds: bool| lines.push((name, measured, holds));
    if let Some(g) = find("w1", "gradient", "f64", 1) {
        check(
            "W1 gradient ≥ 85% of GEMM".into(),
            format!("{:.0}%", 100.0 * g.fraction),
            g.fraction >= 0.85,
        );
        for (op, limit) in [
            ("jvp", 0.7),
            ("ggn", 1.6),
            ("fisher", 1.6),
            ("empirical_fisher", 1.6),
            ("ggn_repeated", 1.3),
            ("hvp", 2.5),
        ] {
            if let Some(r) = find("w1", op, "f64", 1) {
                let ratio = r.ratio;
                check(
                    format!("W1 {op} ≤ {limit} gradients (FLOP floor {:.2})", r.floor),
                    format!("{ratio:.2}"),
                    ratio <= limit,
                );
            }
        }
        if let Some(r2) = find("w1", "gradient", "f64", 2) {
            let speedup = r2.speedup;
            let gemms =
                two_gemms.map_or(String::new(), |c| format!(" (two dgemms at once: {c:.2}×)"));
            check(
                "W1 gradient 2 threads ≥ 1.8× one".into(),
                format!("{speedup:.2}×{gemms}"),
                speedup >= 1.8,
            );
        }
    }
    if let Some(g) = find("w1", "gradient", "f32", 1) {
        check(
            "W1 f32 gradient ≥ 80% of sgemm".into(),
            format!("{:.0}%", 100.0 * g.fraction),
            g.fraction >= 0.8,
        );
    }
    if let Some(g) = find("w2", "gradient", "f64", 1) {
        check(
            "W2 gradient ≥ 60% of GEMM".into(),
            format!("{:.0}%", 100.0 * g.fraction),
            g.fraction >= 0.6,
        );
    }
    if let Some(g) = find("w3", "gradient", "f64", 1) {
        check("W3 gradient < 10 µs".into(), format!("{:.1} µs", 1e6 * g.median), g.median < 10e-6);
    }
    let w3: Vec<&Row> =
        rows.iter().filter(|r| r.workload == "w3" && r.threads == 1 && r.dtype == "f64").collect();
    if let Some(slowest) = w3.iter().max_by(|a, b| a.median.total_cmp(&b.median)) {
        check(
            "W3 every op < 25 µs".into(),
            format!("slowest {} {:.1} µs", slowest.op, 1e6 * slowest.median),
            slowest.median < 25e-6,
        );
    }
    if memory_ratio.is_finite() {
        check(
            "W1 gradient peak memory ≤ 1.5×".into(),
            format!("{memory_ratio:.2}×"),
            memory_ratio <= 1.5,
        );
    }
    println!("\ntargets (issue 3)");
    for (name, measured, holds) in &lines {
        println!("  {:<52} {:>26}  {}", name, measured, if *holds { "holds" } else { "MISSED" });
    }
}

/// The table's column names.
pub fn print_header() {
    println!(
        "{:<18} {:>5} {:>3} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8}",
        "op",
        "dtype",
        "thr",
        "median",
        "min",
        "GFLOP",
        "GFLOP/s",
        "GEMM*",
        "of GEMM*",
        "÷ grad*",
        "speedup*"
    );
}

/// Prints one measured row of the table and returns its JSON record.
pub fn print_row(row: &Row) -> String {
    let Row {
        workload,
        op,
        dtype,
        threads,
        median,
        min,
        flops,
        gemm,
        fraction,
        ratio,
        speedup,
        ..
    } = row;
    let rate = flops / median / 1e9;
    println!(
        "{op:<18} {dtype:>5} {threads:>3} {:>10.4} {:>10.4} {:>8.2} {:>8.1} {:>8.1} {:>7.0}% {:>7.2} {:>8.2}",
        median * 1e3,
        min * 1e3,
        flops / 1e9,
        rate,
        gemm,
        100.0 * fraction,
        ratio,
        speedup
    );
    format!(
        "{{\"workload\":\"{workload}\",\"op\":\"{op}\",\"dtype\":\"{dtype}\",\"threads\":{threads},\"median_s\":{median:e},\"min_s\":{min:e},\"flops\":{flops:e},\"gflops\":{rate:e},\"gemm_gflops\":{gemm:e},\"fraction_of_gemm\":{fraction:e},\"paired_ratio_to_gradient\":{ratio:e},\"paired_speedup\":{speedup:e}}}"
    )
}
