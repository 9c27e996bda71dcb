//! PPL as the store keeps it: deflated. At thousands of grants a policy is
//! a megabyte of near-identical rules that deflate to about a fifteenth, and
//! every copy made on the way into the database (sqlx's, the driver's,
//! SQLite's bind, the row it builds, its pages) is then that much smaller.
//!
//! The form: the text's length in bytes (8, little-endian), then a zlib
//! stream (RFC 1950: deflate with an Adler-32 check) of the UTF-8 text.

use miniz_oxide::deflate::core::{
    CompressorOxide, TDEFLFlush, TDEFLStatus, compress, create_comp_flags_from_zip_params,
};
use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

/// The fastest level: the rules repeat, so it already gives most of the
/// ratio (a fifteenth at 10,000 rules; the best level, a seventeenth) in
/// about half the time.
const LEVEL: i32 = 1;

/// Deflate never expands by more than this factor in reverse: a length
/// prefix beyond it is damage, not a policy, and is refused before any
/// room is made for it.
const MAX_RATIO: usize = 1032;

/// Packs `text` for storing.
pub(crate) fn pack(text: &str) -> Vec<u8> {
    // Positive window bits ask for the zlib wrapper; strategy 0 is the default.
    let mut compressor = CompressorOxide::new(create_comp_flags_from_zip_params(LEVEL, 1, 0));
    let mut packed = Vec::with_capacity(PREFIX + text.len() / 8 + 64);
    packed.extend_from_slice(&(text.len() as u64).to_le_bytes());
    let mut input = text.as_bytes();
    loop {
        if packed.capacity() - packed.len() < 64 {
            packed.reserve(packed.capacity() / 2);
        }
        let start = packed.len();
        packed.resize(packed.capacity(), 0);
        let (status, read, wrote) = compress(
            &mut compressor,
            input,
            &mut packed[start..],
            TDEFLFlush::Finish,
        );
        packed.truncate(start + wrote);
        input = &input[read..];
        match status {
            TDEFLStatus::Done => return packed,
            TDEFLStatus::Okay => {}
            // Only for bad parameters or a call after the end: a bug here.
            other => panic!("deflating into memory failed: {other:?}"),
        }
    }
}

/// The length prefix's size.
const PREFIX: usize = 8;

/// The text `packed` holds; what is wrong with it if it does not hold
/// exactly one (a bad prefix, a damaged or truncated stream, a length or
/// check that does not match, text that is not UTF-8).
pub(crate) fn unpack(packed: &[u8]) -> Result<String, String> {
    let Some((len, stream)) = packed.split_first_chunk::<PREFIX>() else {
        return Err(format!(
            "{} bytes: shorter than the length prefix",
            packed.len()
        ));
    };
    let len = u64::from_le_bytes(*len);
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= stream.len().saturating_mul(MAX_RATIO))
        .ok_or_else(|| {
            format!(
                "says it holds {len} bytes, more than {} bytes of deflate can",
                stream.len()
            )
        })?;
    let mut text = vec![0; len];
    let mut decompressor = Box::<DecompressorOxide>::default();
    let (status, read, wrote) = decompress(
        &mut decompressor,
        stream,
        &mut text,
        0,
        inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER
            | inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
    );
    match status {
        TINFLStatus::Done if wrote == len && read == stream.len() => {}
        TINFLStatus::Done if wrote != len => {
            return Err(format!("holds {wrote} bytes, not the {len} it says"));
        }
        TINFLStatus::Done => {
            return Err(format!(
                "{} bytes follow the end of the stream",
                stream.len() - read
            ));
        }
        TINFLStatus::HasMoreOutput => {
            return Err(format!("holds more than the {len} bytes it says"));
        }
        other => return Err(format!("is not an intact zlib stream ({other:?})")),
    }
    String::from_utf8(text).map_err(|e| format!("is not UTF-8 text ({e})"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_policy_of_thousands_of_rules_packs_small() {
        let rules: Vec<String> = (0..10_000)
            .map(|i| {
                format!(
                    r#"{{"allow":{{"and":[{{"email":{{"is":"person{i}@example.com"}}}},{{"date":{{"before":"2026-12-02T0{}:{:02}:{:02}Z"}}}}]}}}}"#,
                    i % 10,
                    i % 60,
                    (i * 7) % 60
                )
            })
            .collect();
        let text = format!("[{}]", rules.join(","));
        let packed = pack(&text);
        assert!(
            packed.len() * 10 < text.len(),
            "{} bytes packed into {}",
            text.len(),
            packed.len()
        );
        assert_eq!(unpack(&packed).as_deref(), Ok(text.as_str()));
    }

    #[test]
    fn damage_is_named_not_unpacked() {
        let packed = pack(r#"{"allow":{"or":[{"accept":true}]}}"#);
        let cases: [(&str, Vec<u8>); 6] = [
            ("prefix", packed[..4].to_vec()),
            ("truncated", packed[..packed.len() - 3].to_vec()),
            ("checksum", {
                let mut p = packed.clone();
                *p.last_mut().expect("a trailer") ^= 1;
                p
            }),
            ("trailing", [&packed[..], b"x"].concat()),
            ("long prefix", {
                let mut p = packed.clone();
                p[0] += 1;
                p
            }),
            ("short prefix", {
                let mut p = packed.clone();
                p[0] -= 1;
                p
            }),
        ];
        for (what, bytes) in cases {
            assert!(unpack(&bytes).is_err(), "{what} was unpacked");
        }
        let mut huge = packed.clone();
        huge[..PREFIX].copy_from_slice(&u64::MAX.to_le_bytes());
        let error = unpack(&huge).expect_err("an impossible length");
        assert!(error.contains("more than"), "{error}");
    }

    proptest! {
        #[test]
        fn every_text_comes_back_as_it_went_in(text in any::<String>()) {
            prop_assert_eq!(unpack(&pack(&text)), Ok(text));
        }

    }
}
