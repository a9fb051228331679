//! Primitive readers and writers of Kafka's encodings: fixed-width big-endian integers, unsigned
//! varints, classic and compact strings, arrays and bytes, and tagged-field sections.
//!
//! Owns bounds checking of every read. Must not: panic on short or hostile input, or copy
//! `bytes` fields (they are returned as slices of the frame).

use bytes::{BufMut, Bytes, BytesMut};

use super::ProtocolError;

type Result<T> = std::result::Result<T, ProtocolError>;

/// A cursor over one request frame.
pub struct Reader {
    buf: Bytes,
}

impl Reader {
    pub fn new(buf: Bytes) -> Reader {
        Reader { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// What has not been read yet.
    pub fn into_rest(self) -> Bytes {
        self.buf
    }

    fn take<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        if self.buf.len() < N {
            return Err(ProtocolError::Malformed(what));
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[..N]);
        let _ = self.buf.split_to(N);
        Ok(out)
    }

    pub fn i8(&mut self) -> Result<i8> {
        Ok(i8::from_be_bytes(self.take::<1>("truncated int8")?))
    }
    pub fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(self.take::<2>("truncated int16")?))
    }
    pub fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.take::<4>("truncated int32")?))
    }
    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.take::<8>("truncated int64")?))
    }

    pub fn uvarint(&mut self) -> Result<u32> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let [b] = self.take::<1>("truncated varint")?;
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtocolError::Malformed("varint longer than 5 bytes"))
    }

    /// `len` bytes as a slice of the frame (no copy).
    pub fn bytes(&mut self, len: usize) -> Result<Bytes> {
        if self.buf.len() < len {
            return Err(ProtocolError::Malformed("truncated bytes field"));
        }
        Ok(self.buf.split_to(len))
    }

    /// STRING / NULLABLE_STRING (int16 length, -1 = null).
    pub fn nullable_string(&mut self) -> Result<Option<Bytes>> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        self.bytes(len as usize).map(Some)
    }

    /// COMPACT_STRING / COMPACT_NULLABLE_STRING (uvarint length + 1, 0 = null).
    pub fn compact_nullable_string(&mut self) -> Result<Option<Bytes>> {
        match self.uvarint()? {
            0 => Ok(None),
            n => self.bytes(n as usize - 1).map(Some),
        }
    }

    /// A string in the classic or compact encoding.
    pub fn string(&mut self, compact: bool) -> Result<Option<Bytes>> {
        if compact {
            self.compact_nullable_string()
        } else {
            self.nullable_string()
        }
    }

    /// NULLABLE_BYTES or COMPACT_NULLABLE_BYTES.
    pub fn nullable_bytes(&mut self, compact: bool) -> Result<Option<Bytes>> {
        let len = if compact {
            match self.uvarint()? {
                0 => return Ok(None),
                n => n as usize - 1,
            }
        } else {
            let n = self.i32()?;
            if n < 0 {
                return Ok(None);
            }
            n as usize
        };
        self.bytes(len).map(Some)
    }

    /// An array length (null arrays count as empty). Each element takes at least one byte, so a
    /// length larger than what is left is refused before anything is allocated.
    pub fn array_len(&mut self, compact: bool) -> Result<usize> {
        let n: i64 = if compact {
            i64::from(self.uvarint()?) - 1
        } else {
            i64::from(self.i32()?)
        };
        if n < 0 {
            return Ok(0);
        }
        if n as usize > self.buf.len() {
            return Err(ProtocolError::Malformed("array longer than the frame"));
        }
        Ok(n as usize)
    }

    /// Skips a tagged-field section (flexible versions).
    pub fn skip_tagged_fields(&mut self) -> Result<()> {
        let count = self.uvarint()?;
        for _ in 0..count {
            let _tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.bytes(size)?;
        }
        Ok(())
    }
}

/// Writes an unsigned varint.
pub fn put_uvarint(out: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// Writes a string in the classic (int16 length) or compact encoding.
pub fn put_string(out: &mut BytesMut, s: &[u8], compact: bool) {
    if compact {
        put_uvarint(out, s.len() as u32 + 1);
    } else {
        out.put_i16(s.len() as i16);
    }
    out.put_slice(s);
}

/// Writes an array length in the classic or compact encoding.
pub fn put_array_len(out: &mut BytesMut, n: usize, compact: bool) {
    if compact {
        put_uvarint(out, n as u32 + 1);
    } else {
        out.put_i32(n as i32);
    }
}

/// Writes a (nullable) bytes length; `None` = null.
pub fn put_bytes_len(out: &mut BytesMut, n: Option<usize>, compact: bool) {
    match (n, compact) {
        (None, true) => put_uvarint(out, 0),
        (None, false) => out.put_i32(-1),
        (Some(n), true) => put_uvarint(out, n as u32 + 1),
        (Some(n), false) => out.put_i32(n as i32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_roundtrip_and_hostile_input_is_refused() {
        for v in [0u32, 1, 127, 128, 300, 16_383, 16_384, u32::MAX] {
            let mut out = BytesMut::new();
            put_uvarint(&mut out, v);
            assert_eq!(Reader::new(out.freeze()).uvarint().unwrap(), v);
        }
        let mut r = Reader::new(Bytes::from_static(&[0xff; 6]));
        assert!(r.uvarint().is_err());
        let mut r = Reader::new(Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]));
        assert!(
            r.array_len(false).is_err(),
            "a huge array length is refused"
        );
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x05, b'a']));
        assert!(r.nullable_string().is_err());
    }
}
