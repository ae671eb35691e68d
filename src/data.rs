//! Data for the autoencoder reproduction: a seeded CURVES-style synthetic set, and a reader of
//! the IDX format (MNIST, Fashion-MNIST), plain or gzipped.
//!
//! **CURVES-style images.** Each 28×28 image is one cubic Bézier curve `b(t)`, `t ∈ [0, 1]`,
//! whose four control points are uniform in `[0.1, 0.9]²` (image coordinates scaled to the unit
//! square), drawn with an anti-aliased stroke: a pixel at distance `d` (in pixels) from the curve
//! (sampled at 200 points) has intensity `clamp(1.5 − d, 0, 1)`, a stroke about two pixels wide.
//! Like Hinton & Salakhutdinov's CURVES, the images are smooth, mostly blank, and lie near a
//! low-dimensional manifold (8 numbers per image), which the 30-unit code can learn.

use autodiff::Matrix;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::io::Read;
use std::path::Path;

/// Side length of the images.
pub const SIDE: usize = 28;

/// `n` CURVES-style images as the rows of an `n × 784` matrix with entries in `[0, 1]`.
pub fn curves(n: usize, seed: u64) -> Matrix<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Matrix::zeros(n, SIDE * SIDE);
    let s = SIDE as f64;
    for r in 0..n {
        let p: Vec<(f64, f64)> = (0..4)
            .map(|_| (rng.random_range(0.1..0.9) * s, rng.random_range(0.1..0.9) * s))
            .collect();
        let curve: Vec<(f64, f64)> = (0..200)
            .map(|i| {
                let t = i as f64 / 199.0;
                let c = [
                    (1.0 - t).powi(3),
                    3.0 * t * (1.0 - t).powi(2),
                    3.0 * t * t * (1.0 - t),
                    t.powi(3),
                ];
                (
                    c.iter().zip(&p).map(|(w, q)| w * q.0).sum(),
                    c.iter().zip(&p).map(|(w, q)| w * q.1).sum(),
                )
            })
            .collect();
        let row = out.row_mut(r);
        for y in 0..SIDE {
            for x in 0..SIDE {
                let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
                let d = curve
                    .iter()
                    .map(|(cx, cy)| ((cx - px).powi(2) + (cy - py).powi(2)).sqrt())
                    .fold(f64::INFINITY, f64::min);
                row[y * SIDE + x] = (1.5 - d).clamp(0.0, 1.0);
            }
        }
    }
    out
}

/// Errors of the IDX reader.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The bytes are not a supported IDX file.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Parses IDX bytes (gzipped or not): `(dimensions, unsigned bytes)`. Only type `0x08`
/// (unsigned byte) is supported.
pub fn parse_idx(bytes: &[u8], path: &str) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let bad = |reason: &str| DataError::Format { path: path.into(), reason: reason.into() };
    let raw;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut decoded)
            .map_err(|e| bad(&format!("gzip: {e}")))?;
        raw = decoded;
        &raw[..]
    } else {
        bytes
    };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("missing IDX magic (two zero bytes, type, rank)"));
    }
    if bytes[2] != 0x08 {
        return Err(bad(&format!(
            "element type 0x{:02x} is not supported (only unsigned bytes, 0x08)",
            bytes[2]
        )));
    }
    let rank = bytes[3] as usize;
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(bad("truncated header"));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize
        })
        .collect();
    // The product of the dimensions comes from the file: checked, so that a header whose
    // product wraps around (e.g. [2^22, 2^21, 2^21] to 0) is not taken for a small file.
    let count = dims.iter().try_fold(1usize, |total, &d| total.checked_mul(d));
    let found = bytes.len() - header;
    match count {
        None => {
            return Err(bad(&format!(
                "dimensions {dims:?} hold more elements than memory can (their product \
                 overflows), found {found} data bytes"
            )))
        }
        Some(count) if count != found => {
            return Err(bad(&format!(
                "expected {count} data bytes for dimensions {dims:?}, found {found}"
            )))
        }
        Some(_) => {}
    }
    Ok((dims, bytes[header..].to_vec()))
}

/// Reads an IDX image file (`n × rows × cols`) as an `n × rows·cols` matrix scaled to `[0, 1]`.
pub fn read_idx_images(path: &Path) -> Result<Matrix<f64>, DataError> {
    let name = path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|source| DataError::Io { path: name.clone(), source })?;
    let (dims, data) = parse_idx(&bytes, &name)?;
    if dims.len() != 3 {
        return Err(DataError::Format {
            path: name,
            reason: format!("images need 3 dimensions, found {dims:?}"),
        });
    }
    // parse_idx checked the product of the three dimensions, unless one of them is 0.
    let pixels = dims[1].checked_mul(dims[2]).ok_or_else(|| DataError::Format {
        path: name.clone(),
        reason: format!("images of {}×{} pixels are more than memory can hold", dims[1], dims[2]),
    })?;
    Matrix::from_vec(dims[0], pixels, data.iter().map(|&b| b as f64 / 255.0).collect())
        .map_err(|e| DataError::Format { path: name, reason: e.to_string() })
}

/// Rank `rank`'s rows of an IDX image file split over `size` ranks (contiguous, in rank order,
/// sizes differing by at most one: [`curvature::distributed::shard_range`]), as
/// [`read_idx_images`] reads the whole file. Only the shard's bytes become `f64`s, so each rank
/// holds its own rows, not the data set (the file itself is read whole: gzip cannot seek).
pub fn read_idx_images_shard(
    path: &Path,
    rank: usize,
    size: usize,
) -> Result<Matrix<f64>, DataError> {
    let name = path.display().to_string();
    if rank >= size {
        return Err(DataError::Format {
            path: name,
            reason: format!("shard of rank {rank} out of {size} ranks (needs rank < size)"),
        });
    }
    let bytes =
        std::fs::read(path).map_err(|source| DataError::Io { path: name.clone(), source })?;
    let (dims, data) = parse_idx(&bytes, &name)?;
    if dims.len() != 3 {
        return Err(DataError::Format {
            path: name,
            reason: format!("images need 3 dimensions, found {dims:?}"),
        });
    }
    let pixels = dims[1] * dims[2];
    let rows = curvature::distributed::shard_range(dims[0], rank, size);
    let shard = &data[rows.start * pixels..rows.end * pixels];
    Ok(Matrix::from_vec(rows.len(), pixels, shard.iter().map(|&b| b as f64 / 255.0).collect())
        .expect("sizes checked"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn curves_are_deterministic_smooth_and_in_range() {
        let a = curves(20, 1);
        assert_eq!(a.shape(), autodiff::Shape::new(20, 784));
        assert_eq!(a, curves(20, 1));
        assert_ne!(a, curves(20, 2));
        assert!(a.data().iter().all(|&v| (0.0..=1.0).contains(&v)));
        for r in 0..20 {
            let ink: f64 = a.row(r).iter().sum();
            assert!(ink > 10.0 && ink < 400.0, "image {r} has ink {ink}");
            // Smoothness: horizontal neighbours are highly correlated.
            let row = a.row(r);
            let pairs: Vec<(f64, f64)> = (0..SIDE)
                .flat_map(|y| (0..SIDE - 1).map(move |x| (y * SIDE + x, y * SIDE + x + 1)))
                .map(|(i, j)| (row[i], row[j]))
                .collect();
            let n = pairs.len() as f64;
            let (mx, my) = (
                pairs.iter().map(|p| p.0).sum::<f64>() / n,
                pairs.iter().map(|p| p.1).sum::<f64>() / n,
            );
            let cov: f64 = pairs.iter().map(|(x, y)| (x - mx) * (y - my)).sum::<f64>();
            let (vx, vy): (f64, f64) = (
                pairs.iter().map(|p| (p.0 - mx).powi(2)).sum(),
                pairs.iter().map(|p| (p.1 - my).powi(2)).sum(),
            );
            assert!(cov / (vx * vy).sqrt() > 0.5, "image {r} is not smooth");
        }
    }

    fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn idx_reads_plain_and_gzipped_and_rejects_bad_files() {
        let data: Vec<u8> = (0..12).map(|i| (i * 20) as u8).collect();
        let plain = idx_bytes(&[3, 2, 2], &data);
        let dir = std::env::temp_dir().join(format!("natgrad-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.idx"), &plain).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain).unwrap();
        std::fs::write(dir.join("a.idx.gz"), gz.finish().unwrap()).unwrap();
        for name in ["a.idx", "a.idx.gz"] {
            let m = read_idx_images(&dir.join(name)).unwrap();
            assert_eq!(m.shape(), autodiff::Shape::new(3, 4));
            assert_eq!(m[(2, 3)], 220.0 / 255.0);
        }
        let err = parse_idx(&plain[..plain.len() - 1], "t").unwrap_err().to_string();
        assert!(err.contains("expected 12 data bytes"), "{err}");
        assert!(parse_idx(&[1, 0, 8, 1, 0, 0, 0, 0], "t")
            .unwrap_err()
            .to_string()
            .contains("magic"));
        let mut wrong_type = plain.clone();
        wrong_type[2] = 0x0d;
        assert!(parse_idx(&wrong_type, "t").unwrap_err().to_string().contains("0x0d"));
        assert!(read_idx_images(&dir.join("missing")).unwrap_err().to_string().contains("missing"));
    }

    /// Shards over 3 ranks of a 7-image file: 3 + 2 + 2 rows, stacked in rank order they are the
    /// whole file as `read_idx_images` reads it.
    #[test]
    fn idx_shards_are_the_ranks_rows_of_the_whole_file() {
        let data: Vec<u8> = (0..28).map(|i| (i * 9) as u8).collect();
        let dir = std::env::temp_dir().join(format!("natgrad-idx-shard-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.idx");
        std::fs::write(&path, idx_bytes(&[7, 2, 2], &data)).unwrap();
        let whole = read_idx_images(&path).unwrap();
        let mut stacked = Vec::new();
        for (rank, rows) in [3, 2, 2].into_iter().enumerate() {
            let shard = read_idx_images_shard(&path, rank, 3).unwrap();
            assert_eq!(shard.shape(), autodiff::Shape::new(rows, 4));
            stacked.extend_from_slice(shard.data());
        }
        assert_eq!(stacked, whole.data());
        let err = read_idx_images_shard(&path, 3, 3).unwrap_err().to_string();
        assert!(err.contains("rank 3 out of 3"), "{err}");
    }
}
