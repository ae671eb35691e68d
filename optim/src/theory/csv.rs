//! Sequences to CSV, for plotting elsewhere.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes named columns (of equal or shorter length; missing cells are empty) with a header row.
pub fn write_columns(path: &Path, columns: &[(&str, &[f64])]) -> std::io::Result<()> {
    let mut out = BufWriter::new(
        File::create(path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?,
    );
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    writeln!(out, "{}", names.join(","))?;
    let rows = columns.iter().map(|(_, c)| c.len()).max().unwrap_or(0);
    for r in 0..rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|(_, c)| c.get(r).map_or(String::new(), |v| format!("{v:e}")))
            .collect();
        writeln!(out, "{}", cells.join(","))?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_header_and_ragged_columns() {
        let dir = std::env::temp_dir().join(format!("natgrad-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.csv");
        write_columns(&path, &[("k", &[0.0, 1.0]), ("h", &[0.5])]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "k,h\n0e0,5e-1\n1e0,\n");
    }
}
