//! The `.npy` writer against the format spelled out here, byte for byte, and its files read
//! back by a reader written in this test (not `curvature::npy::decode`).
//!
//! NumPy format version 1.0, as `numpy.save` writes a C-order float64 array:
//!
//! - bytes 0..6: the magic `\x93NUMPY`;
//! - bytes 6, 7: the version, `1` and `0`;
//! - bytes 8, 9: the header length `L`, a little-endian `u16`;
//! - bytes 10..10+L: the ASCII dict
//!   `{'descr': '<f8', 'fortran_order': False, 'shape': (r, c), }` (a vector: `(n,)`), padded
//!   with spaces and ended by `\n` so that `10 + L` is a multiple of 64;
//! - bytes 10+L..: the elements, row-major, each an IEEE-754 binary64, little-endian.
//!
//! For every shape used here the dict is 57 to 61 characters, so `L = 118` (`0x76 0x00`) and
//! the data starts at byte 128. The element bytes are written out from the bit patterns
//! (`1.0 = 0x3FF0_0000_0000_0000`, …), not by `f64::to_le_bytes`.

use autodiff::Matrix;
use curvature::npy;

/// Byte 0..10: magic, version 1.0, header length 118 little-endian.
const PREAMBLE: [u8; 10] = [0x93, b'N', b'U', b'M', b'P', b'Y', 0x01, 0x00, 0x76, 0x00];

/// Little-endian binary64 bytes of the values used below, from their bit patterns.
fn element_bytes(value: f64) -> [u8; 8] {
    match value {
        1.0 => [0, 0, 0, 0, 0, 0, 0xF0, 0x3F], // 0x3FF0_0000_0000_0000
        -2.0 => [0, 0, 0, 0, 0, 0, 0x00, 0xC0], // 0xC000_0000_0000_0000
        0.5 => [0, 0, 0, 0, 0, 0, 0xE0, 0x3F], // 0x3FE0_0000_0000_0000
        0.1 => [0x9A, 0x99, 0x99, 0x99, 0x99, 0x99, 0xB9, 0x3F], // 0x3FB9_9999_9999_999A
        3.0 => [0, 0, 0, 0, 0, 0, 0x08, 0x40], // 0x4008_0000_0000_0000
        0.0 => [0; 8],
        -0.25 => [0, 0, 0, 0, 0, 0, 0xD0, 0xBF], // 0xBFD0_0000_0000_0000
        _ => panic!("no bytes written out for {value}"),
    }
}

/// The expected file: preamble, the dict padded to 117 characters plus `\n`, the elements.
fn expected_bytes(dict: &str, values: &[f64]) -> Vec<u8> {
    let mut bytes = PREAMBLE.to_vec();
    bytes.extend_from_slice(dict.as_bytes());
    bytes.extend(std::iter::repeat_n(b' ', 117 - dict.len()));
    bytes.push(b'\n');
    assert_eq!(bytes.len(), 128, "the data starts at byte 128");
    for &v in values {
        bytes.extend_from_slice(&element_bytes(v));
    }
    bytes
}

/// The reader of this test: checks the layout above and returns (dict text, elements).
fn read(bytes: &[u8]) -> (String, Vec<f64>) {
    assert_eq!(&bytes[..6], b"\x93NUMPY", "magic");
    assert_eq!((bytes[6], bytes[7]), (1, 0), "version 1.0");
    let length = bytes[8] as usize | (bytes[9] as usize) << 8;
    assert_eq!((10 + length) % 64, 0, "data aligned to 64 bytes");
    let header = std::str::from_utf8(&bytes[10..10 + length]).expect("ASCII header");
    assert!(header.ends_with('\n'), "header ends with a newline");
    let dict = header.trim_end_matches('\n').trim_end_matches(' ').to_string();
    let body = &bytes[10 + length..];
    assert_eq!(body.len() % 8, 0, "whole elements");
    let values = body
        .chunks(8)
        .map(|c| {
            let bits = c.iter().rev().fold(0_u64, |acc, &b| acc << 8 | b as u64);
            f64::from_bits(bits)
        })
        .collect();
    (dict, values)
}

#[test]
fn a_matrix_is_written_byte_for_byte_as_numpy_lays_it_out() {
    let values = [1.0, -2.0, 0.5, 0.1, 3.0, -0.25];
    let m = Matrix::from_vec(2, 3, values.to_vec()).unwrap();
    let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
    let expected = expected_bytes(dict, &values);
    assert_eq!(npy::encode_matrix(&m), expected);
    let (read_dict, read_values) = read(&expected);
    assert_eq!((read_dict.as_str(), read_values.as_slice()), (dict, &values[..]));
    // Row-major: element (1, 0) is the fourth.
    assert_eq!(read_values[3], m[(1, 0)]);
}

#[test]
fn a_vector_has_a_one_element_shape_tuple() {
    let values = [0.1, 0.0, -2.0];
    let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }";
    assert_eq!(npy::encode_vector(&values), expected_bytes(dict, &values));
}

#[test]
fn wider_shapes_shift_the_padding_not_the_data() {
    let values: Vec<f64> = (0..120).map(|k| [1.0, 0.5, -0.25][k % 3]).collect();
    let m = Matrix::from_vec(10, 12, values.clone()).unwrap();
    let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (10, 12), }";
    assert_eq!(npy::encode_matrix(&m), expected_bytes(dict, &values));
}

#[test]
fn files_on_disk_hold_the_same_bytes_and_the_crate_reads_hand_built_files() {
    let dir = std::env::temp_dir().join(format!("npy_layout_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let values = [1.0, -2.0, 0.5, 0.1, 3.0, -0.25];
    let m = Matrix::from_vec(3, 2, values.to_vec()).unwrap();
    let path = dir.join("m.npy");
    npy::write_matrix(&path, &m).unwrap();
    let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }";
    assert_eq!(std::fs::read(&path).unwrap(), expected_bytes(dict, &values));
    let path = dir.join("v.npy");
    npy::write_vector(&path, &values[..2]).unwrap();
    let (read_dict, read_values) = read(&std::fs::read(&path).unwrap());
    assert_eq!(read_dict, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }");
    assert_eq!(read_values, [1.0, -2.0]);
    // The crate's reader on bytes built by hand.
    let decoded = npy::decode(&expected_bytes(dict, &values)).unwrap();
    assert_eq!(decoded, (vec![3, 2], values.to_vec()));
    std::fs::remove_dir_all(&dir).unwrap();
}
