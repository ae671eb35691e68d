//! Dense matrices and vectors to NumPy's `.npy` format (version 1.0, `<f8`, C order), so a
//! researcher can look at a curvature matrix with `numpy.load`.
//!
//! Layout: the magic `\x93NUMPY`, version `1 0`, a little-endian `u16` header length, an ASCII
//! dict `{'descr': '<f8', 'fortran_order': False, 'shape': (r, c), }` padded with spaces and
//! ended by `\n` so that the data starts at a multiple of 64 bytes, then little-endian `f64`s.

use autodiff::Matrix;
use std::io;
use std::path::Path;

fn encode(shape: &[usize], data: &[f64]) -> Vec<u8> {
    let shape_text = match shape {
        [n] => format!("({n},)"),
        dims => format!("({})", dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_text}, }}");
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 8 * data.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// The `.npy` bytes of a matrix (shape `(rows, cols)`).
pub fn encode_matrix(m: &Matrix<f64>) -> Vec<u8> {
    encode(&[m.rows(), m.cols()], m.data())
}

/// The `.npy` bytes of a vector (shape `(n,)`).
pub fn encode_vector(v: &[f64]) -> Vec<u8> {
    encode(&[v.len()], v)
}

fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    std::fs::write(path, bytes)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Writes a matrix to `path`.
pub fn write_matrix(path: &Path, m: &Matrix<f64>) -> io::Result<()> {
    write(path, &encode_matrix(m))
}

/// Writes a vector to `path`.
pub fn write_vector(path: &Path, v: &[f64]) -> io::Result<()> {
    write(path, &encode_vector(v))
}

/// Reads `<f8`, C-order `.npy` bytes back: `(shape, data)`.
pub fn decode(bytes: &[u8]) -> io::Result<(Vec<usize>, Vec<f64>)> {
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a float64 C-order .npy file: {what}"),
        )
    };
    if bytes.len() < 10 || &bytes[..8] != b"\x93NUMPY\x01\x00" {
        return Err(bad("magic or version"));
    }
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header =
        std::str::from_utf8(bytes.get(10..10 + len).ok_or_else(|| bad("truncated header"))?)
            .map_err(|_| bad("header"))?;
    if !header.contains("'descr': '<f8'") || !header.contains("'fortran_order': False") {
        return Err(bad("dtype or order"));
    }
    let inside = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("shape"))?;
    let shape: Vec<usize> = inside
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad("shape")))
        .collect::<io::Result<_>>()?;
    let count: usize = shape.iter().product();
    let body = &bytes[10 + len..];
    if body.len() != 8 * count {
        return Err(bad("data length"));
    }
    let data =
        body.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
    Ok((shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_exact() {
        let bytes =
            encode_matrix(&Matrix::from_vec(2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap());
        let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + len) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
        assert!(header.starts_with("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }"));
        assert!(header.ends_with('\n'));
        assert_eq!(&bytes[10 + len..10 + len + 8], &1.0f64.to_le_bytes());
        assert_eq!(bytes.len(), 10 + len + 48);
    }

    #[test]
    fn round_trips_matrices_vectors_and_empty_shapes() {
        let m = Matrix::from_fn(5, 7, |i, j| (i as f64 - 2.0) * 0.1 + j as f64 * 1e-9);
        assert_eq!(decode(&encode_matrix(&m)).unwrap(), (vec![5, 7], m.data().to_vec()));
        assert_eq!(decode(&encode_vector(&[1.5, -2.0])).unwrap(), (vec![2], vec![1.5, -2.0]));
        let text = String::from_utf8_lossy(&encode_vector(&[1.5])).to_string();
        assert!(text.contains("'shape': (1,)"));
        assert_eq!(decode(&encode_matrix(&Matrix::zeros(0, 3))).unwrap(), (vec![0, 3], vec![]));
        let mut broken = encode_vector(&[1.0, 2.0]);
        broken.pop();
        assert!(decode(&broken).is_err());
        assert!(decode(b"not numpy").is_err());
    }
}
