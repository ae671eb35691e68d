//! The IDX reader on bad bytes (issue 17, item 1): a header whose dimensions multiply past
//! `usize` is an error naming them, not a wrapped size that passes; random, truncated and
//! mutated files are always `Ok` or `Err`, never a panic, and `Ok` only when the header's
//! sizes match the data.

use natgrad::data::{parse_idx, read_idx_images, DataError};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::io::Write;

fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn format_error(result: Result<(Vec<usize>, Vec<u8>), DataError>) -> String {
    match result {
        Err(DataError::Format { path, reason }) => format!("{path}: {reason}"),
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn a_header_whose_dimensions_wrap_to_zero_is_an_error_naming_them() {
    // 16 bytes: [2^22, 2^21, 2^21], a product of 2^64 that wrapped to 0 = the data length.
    let bytes = idx_bytes(&[1 << 22, 1 << 21, 1 << 21], &[]);
    assert_eq!(bytes.len(), 16);
    let msg = format_error(parse_idx(&bytes, "huge.idx"));
    assert!(msg.contains("huge.idx") && msg.contains("[4194304, 2097152, 2097152]"), "{msg}");
    assert!(msg.contains("overflows"), "{msg}");
    // The same through the file reader, and gzipped.
    let dir = std::env::temp_dir().join(format!("natgrad-bad-idx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, content) in [("huge.idx", bytes.clone()), ("huge.idx.gz", gzip(&bytes))] {
        std::fs::write(dir.join(name), content).unwrap();
        let err = read_idx_images(&dir.join(name)).unwrap_err();
        assert!(matches!(err, DataError::Format { .. }), "{err:?}");
        assert!(err.to_string().contains("overflows"), "{err}");
    }
    // Dimensions whose product fits but does not match the data: the count is named.
    let msg = format_error(parse_idx(&idx_bytes(&[u32::MAX, u32::MAX], &[1, 2]), "t"));
    assert!(msg.contains("expected 18446744065119617025 data bytes"), "{msg}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The independent rule for a plain (not gzipped) IDX file: magic, type 0x08, rank r, r
/// big-endian u32 dimensions, and exactly their product of data bytes.
fn consistent(bytes: &[u8], dims: &[usize], data: &[u8]) -> bool {
    let header = 4 + 4 * dims.len();
    let product = dims.iter().try_fold(1u128, |p, &d| p.checked_mul(d as u128));
    bytes.len() >= header
        && bytes[..4] == [0, 0, 8, dims.len() as u8]
        && dims.iter().enumerate().all(|(i, &d)| {
            u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize == d
        })
        && product == Some(data.len() as u128)
        && bytes[header..] == *data
}

fn check(bytes: &[u8]) -> Result<bool, String> {
    match parse_idx(bytes, "fuzz") {
        Ok((dims, data)) => {
            if consistent(bytes, &dims, &data) {
                Ok(true)
            } else {
                Err(format!("Ok for inconsistent bytes {bytes:?}: dims {dims:?}"))
            }
        }
        Err(DataError::Format { reason, .. }) if !reason.is_empty() => Ok(false),
        Err(e) => Err(format!("unexpected error {e:?}")),
    }
}

#[test]
fn random_truncated_and_mutated_bytes_are_ok_or_err_and_ok_only_when_sizes_match() {
    let mut rng = StdRng::seed_from_u64(17);
    let (mut accepted, mut rejected) = (0, 0);
    let mut tally = |r: Result<bool, String>| match r {
        Ok(true) => accepted += 1,
        Ok(false) => rejected += 1,
        Err(e) => panic!("{e}"),
    };
    // Purely random bytes, some with the magic and the gzip signature in front.
    for _ in 0..2000 {
        let len = rng.random_range(0..40);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        match rng.random_range(0..4) {
            0 if len >= 4 => bytes[..3].copy_from_slice(&[0, 0, 8]),
            1 if len >= 2 => bytes[..2].copy_from_slice(&[0x1f, 0x8b]),
            _ => {}
        }
        tally(check(&bytes));
    }
    // Valid files of random small shapes, every truncation of them, and single-byte mutations.
    for _ in 0..60 {
        let rank = rng.random_range(0..4);
        let dims: Vec<u32> = (0..rank).map(|_| rng.random_range(0..4)).collect();
        let count: u32 = dims.iter().product();
        let data: Vec<u8> = (0..count).map(|_| rng.random()).collect();
        let file = idx_bytes(&dims, &data);
        tally(check(&file));
        for cut in 0..file.len() {
            tally(check(&file[..cut]));
        }
        for _ in 0..20 {
            let mut mutated = file.clone();
            let at = rng.random_range(0..mutated.len());
            mutated[at] = rng.random();
            tally(check(&mutated));
        }
        // Huge dimensions spliced into the header.
        if rank > 0 {
            let mut big = file.clone();
            let at = 4 + 4 * rng.random_range(0..rank as usize);
            big[at..at + 4].copy_from_slice(&rng.random_range(1u32 << 20..=u32::MAX).to_be_bytes());
            tally(check(&big));
        }
        // Gzipped, and gzipped then truncated (a bad stream is an error, not a panic).
        let gz = gzip(&file);
        assert!(
            matches!(parse_idx(&gz, "g"), Ok((ref d, ref x)) if *x == data && d.len() == dims.len())
        );
        for cut in [2, gz.len() / 2, gz.len() - 1] {
            assert!(parse_idx(&gz[..cut], "g").is_err(), "a truncated gzip stream parsed");
        }
    }
    // Both outcomes occur often, or the fuzzing would be checking nothing.
    assert!(accepted > 60 && rejected > 2000, "accepted {accepted}, rejected {rejected}");
}
