//! Kafka's record-batch compression codecs: compress and decompress the records part of a v2
//! batch (everything after the 61-byte header) with gzip, snappy, lz4 or zstd.
//!
//! Owns the framing Kafka's own clients write for each codec — gzip stream, xerial-framed snappy
//! (snappy-java's `SnappyOutputStream`; raw snappy as librdkafka may send is also read), LZ4 frame
//! with 64 KiB independent blocks and no checksums (`KafkaLZ4BlockOutputStream`), zstd frame —
//! and bounds decompression: a caller says how many bytes the output may reach, and a batch
//! that would expand past it is a [`CodecError::TooLarge`] before that much is allocated (a few
//! KiB of zeros compress to GBs). This is the one implementation: the log cleaner
//! (`compact`) and the benchmark client use it.
//!
//! Must not parse batch headers or records (that is `batch`), and does no I/O.

use std::io::{Read, Write};
use std::str::FromStr;

/// Errors of compressing or decompressing one batch's records.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("{codec} compression: {reason}")]
    Compress { codec: Codec, reason: String },
    #[error("{codec} decompression: {reason}")]
    Decompress { codec: Codec, reason: String },
    #[error("{codec} decompression: the records expand past {max_bytes} bytes")]
    TooLarge { codec: Codec, max_bytes: usize },
    #[error("unknown compression codec id {0}")]
    UnknownCodec(i16),
}

/// Kafka's compression.type values (the codec id is bits 0–2 of a batch's attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    pub const ALL: [Codec; 5] = [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
    ];

    /// The codec id in a batch's attributes.
    pub fn id(self) -> i16 {
        match self {
            Codec::None => 0,
            Codec::Gzip => 1,
            Codec::Snappy => 2,
            Codec::Lz4 => 3,
            Codec::Zstd => 4,
        }
    }

    pub fn from_id(id: i16) -> Result<Codec, CodecError> {
        Codec::ALL
            .into_iter()
            .find(|c| c.id() == id)
            .ok_or(CodecError::UnknownCodec(id))
    }

    /// Kafka's default compression.<codec>.level (KIP-390): gzip 6 (Deflater's default), zstd 3.
    /// snappy has no levels, and lz4_flex implements only LZ4's fast mode, so lz4 levels are not
    /// honoured (Kafka's default lz4 level 9 is its high-compression mode).
    pub fn default_level(self) -> Option<i32> {
        match self {
            Codec::Gzip => Some(6),
            Codec::Zstd => Some(3),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Codec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Codec::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown compression.type {s:?} (none, gzip, snappy, lz4, zstd)")
            })
    }
}

/// The xerial snappy-java stream header Kafka's Java producer writes (SnappyOutputStream): magic,
/// version 1, minimum compatible version 1; then blocks of (big-endian i32 length, raw snappy).
pub const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_BLOCK: usize = 32 * 1024;

/// Compresses `data` (a batch's records) as Kafka's clients frame it; `level` is the codec's
/// level, `None` for its default.
pub fn compress(codec: Codec, level: Option<i32>, data: &[u8]) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    compress_into(codec, level, data, &mut out)?;
    Ok(out)
}

/// [`compress`], appending to `out` (a batch whose header is already there).
pub fn compress_into(
    codec: Codec,
    level: Option<i32>,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let err = |reason: String| CodecError::Compress { codec, reason };
    match codec {
        Codec::None => out.extend_from_slice(data),
        Codec::Gzip => {
            let level = level.or(codec.default_level()).unwrap_or(6).clamp(1, 9) as u32;
            let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::new(level));
            enc.write_all(data).map_err(|e| err(e.to_string()))?;
            enc.finish().map_err(|e| err(e.to_string()))?;
        }
        Codec::Snappy => {
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            for block in data.chunks(XERIAL_BLOCK) {
                let compressed = enc.compress_vec(block).map_err(|e| err(e.to_string()))?;
                out.extend_from_slice(&(compressed.len() as i32).to_be_bytes());
                out.extend_from_slice(&compressed);
            }
        }
        Codec::Lz4 => {
            // Kafka's KafkaLZ4BlockOutputStream: LZ4 frame, 64 KiB independent blocks, no block or
            // content checksum, no content size (its reader handles exactly these).
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent)
                .block_checksums(false)
                .content_checksum(false);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, out);
            enc.write_all(data).map_err(|e| err(e.to_string()))?;
            enc.finish().map_err(|e| err(e.to_string()))?;
        }
        Codec::Zstd => {
            let level = level.or(codec.default_level()).unwrap_or(3);
            let compressed = zstd::bulk::compress(data, level).map_err(|e| err(e.to_string()))?;
            out.extend_from_slice(&compressed);
        }
    }
    Ok(())
}

/// Decompresses a batch's records; more than `max_bytes` of output is [`CodecError::TooLarge`]
/// (checked while decompressing, so at most `max_bytes + 1` bytes are ever produced).
pub fn decompress(codec: Codec, data: &[u8], max_bytes: usize) -> Result<Vec<u8>, CodecError> {
    let err = |reason: String| CodecError::Decompress { codec, reason };
    let too_large = CodecError::TooLarge { codec, max_bytes };
    // Streams are read through `take(max + 1)`: one byte past the bound proves it is exceeded.
    let bounded = |reader: &mut dyn Read| -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::new();
        reader
            .take(max_bytes as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| err(e.to_string()))?;
        if out.len() > max_bytes {
            return Err(CodecError::TooLarge { codec, max_bytes });
        }
        Ok(out)
    };
    match codec {
        Codec::None => {
            if data.len() > max_bytes {
                return Err(too_large);
            }
            Ok(data.to_vec())
        }
        Codec::Gzip => bounded(&mut flate2::read::GzDecoder::new(data)),
        Codec::Lz4 => bounded(&mut lz4_flex::frame::FrameDecoder::new(data)),
        Codec::Zstd => {
            let mut dec = zstd::stream::read::Decoder::new(data).map_err(|e| err(e.to_string()))?;
            bounded(&mut dec)
        }
        Codec::Snappy => {
            let mut dec = snap::raw::Decoder::new();
            // A raw snappy block states its decompressed length up front: checked before
            // anything is allocated.
            let mut block = |block: &[u8], out: &mut Vec<u8>| -> Result<(), CodecError> {
                let len = snap::raw::decompress_len(block).map_err(|e| err(e.to_string()))?;
                if out.len().saturating_add(len) > max_bytes {
                    return Err(CodecError::TooLarge { codec, max_bytes });
                }
                let at = out.len();
                out.resize(at + len, 0);
                let n = dec
                    .decompress(block, &mut out[at..])
                    .map_err(|e| err(e.to_string()))?;
                out.truncate(at + n);
                Ok(())
            };
            let mut out = Vec::new();
            match data.strip_prefix(&XERIAL_MAGIC[..]) {
                Some(rest) => {
                    let mut rest = rest.get(8..).ok_or_else(|| err("short header".into()))?;
                    while !rest.is_empty() {
                        let (len, tail) = rest
                            .split_first_chunk::<4>()
                            .ok_or_else(|| err("short block length".into()))?;
                        let len = usize::try_from(i32::from_be_bytes(*len))
                            .map_err(|_| err("negative block length".into()))?;
                        let (data, tail) = tail
                            .split_at_checked(len)
                            .ok_or_else(|| err("block runs past the end".into()))?;
                        block(data, &mut out)?;
                        rest = tail;
                    }
                }
                // librdkafka may send raw (unframed) snappy.
                None => block(data, &mut out)?,
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Vec<u8> {
        let mut v = Vec::new();
        for i in 0..5_000u32 {
            v.extend_from_slice(format!("record-{i}-{}|", i % 97).as_bytes());
        }
        v
    }

    #[test]
    fn every_codec_round_trips_and_compresses() {
        let data = payload();
        for codec in Codec::ALL {
            let packed = compress(codec, None, &data).unwrap();
            if codec != Codec::None {
                assert!(packed.len() * 2 < data.len(), "{codec}: {}", packed.len());
            }
            assert_eq!(
                decompress(codec, &packed, data.len()).unwrap(),
                data,
                "{codec}"
            );
            for level in [Some(1), Some(9)] {
                let packed = compress(codec, level, &data).unwrap();
                assert_eq!(
                    decompress(codec, &packed, 1 << 20).unwrap(),
                    data,
                    "{codec}"
                );
            }
        }
    }

    #[test]
    fn framing_is_what_kafka_readers_expect() {
        let body = |codec| compress(codec, None, b"hello hello hello").unwrap();
        assert_eq!(&body(Codec::Gzip)[..2], &[0x1f, 0x8b]);
        assert_eq!(&body(Codec::Snappy)[..8], &XERIAL_MAGIC);
        let lz4 = body(Codec::Lz4);
        assert_eq!(&lz4[..4], &0x184D_2204u32.to_le_bytes());
        assert_eq!(
            lz4[4], 0b0110_0000,
            "FLG: v01, independent blocks, no checksums"
        );
        assert_eq!(lz4[5], 0x40, "BD: 64 KiB blocks");
        assert_eq!(&body(Codec::Zstd)[..4], &0xFD2F_B528u32.to_le_bytes());
        // Raw snappy (librdkafka) also decodes.
        let raw = snap::raw::Encoder::new()
            .compress_vec(b"hello hello")
            .unwrap();
        assert_eq!(decompress(Codec::Snappy, &raw, 64).unwrap(), b"hello hello");
    }

    #[test]
    fn a_small_input_cannot_expand_past_the_bound() {
        let zeros = vec![0u8; 64 << 20];
        for codec in Codec::ALL {
            let packed = compress(codec, None, &zeros).unwrap();
            if codec != Codec::None {
                assert!(packed.len() < 4 << 20, "{codec}: {}", packed.len());
            }
            match decompress(codec, &packed, 1 << 20) {
                Err(CodecError::TooLarge { max_bytes, .. }) => assert_eq!(max_bytes, 1 << 20),
                other => panic!("{codec}: {:?}", other.map(|v| v.len())),
            }
            // Exactly at the bound is fine.
            let packed = compress(codec, None, &zeros[..1 << 20]).unwrap();
            assert_eq!(decompress(codec, &packed, 1 << 20).unwrap().len(), 1 << 20);
        }
    }

    #[test]
    fn damaged_input_is_an_error_not_a_panic() {
        let data = payload();
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let mut packed = compress(codec, None, &data).unwrap();
            let cut = packed.len() / 2;
            assert!(
                decompress(codec, &packed[..cut], 1 << 20).is_err(),
                "{codec} truncated"
            );
            for b in &mut packed[8..] {
                *b ^= 0x5a;
            }
            assert!(
                decompress(codec, &packed, 1 << 20).map_or(true, |out| out != data),
                "{codec} scrambled"
            );
        }
    }

    #[test]
    fn codec_names_and_ids_are_kafkas() {
        for codec in Codec::ALL {
            assert_eq!(codec.name().parse::<Codec>().unwrap(), codec);
            assert_eq!(Codec::from_id(codec.id()).unwrap(), codec);
        }
        assert!("brotli".parse::<Codec>().is_err());
        assert!(matches!(
            Codec::from_id(5),
            Err(CodecError::UnknownCodec(5))
        ));
    }
}
