//! The byte layout of the packed hooks of `sluice:plugin@0.1.3` (`on-request-headers-packed`,
//! `on-response-headers-packed`), shared by the host and the Rust plugin SDK.
//!
//! A packed hook takes the request head (and the response head) as one `list<u8>` and returns
//! its verdict as one, so a call crosses the component boundary once each way instead of once
//! per string: the canonical ABI lowers every string of a `request-head` with a call into the
//! guest's allocator. The bytes hold exactly the WIT types of `types.wit`, in field order:
//!
//! - `u8`, `u16`, `u32`, `u64`, `s32`: little-endian, fixed width; `bool`: one byte, 0 or 1;
//! - `string`, `list<u8>`: a `u32` length, then the bytes (a string is UTF-8, checked);
//! - `list<T>`: a `u32` count, then the items; a tuple: its fields in order;
//! - `option<T>`: a byte 0 (none) or 1 followed by the `T`;
//! - a variant or enum: its case's index (`u8`, in declaration order), then the payload.
//!
//! A buffer must be read to its end: bytes left over are an error like a truncated one.
//! [`Writer`] appends values to a `Vec<u8>`; [`Reader`] reads them back, borrowing strings and
//! byte lists from the buffer.

use std::fmt;

/// Why a packed buffer could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The buffer ended at `at` where `wanted` more bytes were due.
    Truncated {
        /// The offset where the value started.
        at: usize,
        /// The bytes the value needed.
        wanted: usize,
    },
    /// The string at `at` is not UTF-8.
    NotUtf8 {
        /// The offset of the string's bytes.
        at: usize,
    },
    /// The byte at `at` is not a case of the variant, enum, option or bool read there.
    BadTag {
        /// The offset of the tag.
        at: usize,
        /// The tag found.
        tag: u8,
    },
    /// The value ended at `at` with `left` bytes still in the buffer.
    Trailing {
        /// The offset after the value.
        at: usize,
        /// The bytes left over.
        left: usize,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated { at, wanted } => {
                write!(f, "the buffer ends at byte {at} where {wanted} more were due")
            }
            WireError::NotUtf8 { at } => write!(f, "the string at byte {at} is not UTF-8"),
            WireError::BadTag { at, tag } => write!(f, "tag {tag} at byte {at} names no case"),
            WireError::Trailing { at, left } => {
                write!(f, "{left} bytes left over after the value ended at byte {at}")
            }
        }
    }
}

impl std::error::Error for WireError {}

/// Appends packed values to a byte buffer.
pub trait Writer {
    /// One byte.
    fn put_u8(&mut self, v: u8);
    /// A `u16`, little-endian.
    fn put_u16(&mut self, v: u16);
    /// A `u32`, little-endian.
    fn put_u32(&mut self, v: u32);
    /// A `u64`, little-endian.
    fn put_u64(&mut self, v: u64);
    /// An `s32`, little-endian.
    fn put_i32(&mut self, v: i32);
    /// A `bool`: 1 or 0.
    fn put_bool(&mut self, v: bool);
    /// A length or count. Buffers here hold at most a few MiB; a length past `u32::MAX` is
    /// written as `u32::MAX`, which no reader can satisfy, so it fails as truncated.
    fn put_len(&mut self, len: usize);
    /// A `list<u8>`: its length, then the bytes.
    fn put_bytes(&mut self, v: &[u8]);
    /// A `string`: its length, then the UTF-8 bytes.
    fn put_str(&mut self, v: &str);
}

impl Writer for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_i32(&mut self, v: i32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_bool(&mut self, v: bool) {
        self.push(u8::from(v));
    }
    fn put_len(&mut self, len: usize) {
        self.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    }
    fn put_bytes(&mut self, v: &[u8]) {
        self.put_len(v.len());
        self.extend_from_slice(v);
    }
    fn put_str(&mut self, v: &str) {
        self.put_bytes(v.as_bytes());
    }
}

/// Reads packed values from a buffer, front to back; strings and byte lists borrow from it.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, at: 0 }
    }

    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let rest = &self.buf[self.at..];
        if rest.len() < n {
            return Err(WireError::Truncated { at: self.at, wanted: n });
        }
        self.at += n;
        Ok(&rest[..n])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    /// A little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, WireError> {
        self.array().map(u16::from_le_bytes)
    }
    /// A little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, WireError> {
        self.array().map(u32::from_le_bytes)
    }
    /// A little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, WireError> {
        self.array().map(u64::from_le_bytes)
    }
    /// A little-endian `s32`.
    pub fn i32(&mut self) -> Result<i32, WireError> {
        self.array().map(i32::from_le_bytes)
    }

    /// A case index below `cases` (of a variant, enum, option or bool).
    pub fn tag(&mut self, cases: u8) -> Result<u8, WireError> {
        let at = self.at;
        let tag = self.u8()?;
        if tag < cases {
            Ok(tag)
        } else {
            Err(WireError::BadTag { at, tag })
        }
    }

    /// A `bool`.
    pub fn bool(&mut self) -> Result<bool, WireError> {
        self.tag(2).map(|t| t == 1)
    }

    /// A list's count. Each item takes at least `min_item` bytes, so a count the rest of the
    /// buffer cannot hold fails here, before anything is allocated for it.
    pub fn count(&mut self, min_item: usize) -> Result<usize, WireError> {
        let at = self.at;
        let n = self.u32()? as usize;
        let wanted = n.saturating_mul(min_item.max(1));
        if wanted > self.buf.len() - self.at {
            return Err(WireError::Truncated { at, wanted });
        }
        Ok(n)
    }

    /// A `list<u8>`.
    pub fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// A `string`.
    pub fn str(&mut self) -> Result<&'a str, WireError> {
        let n = self.u32()? as usize;
        let at = self.at;
        std::str::from_utf8(self.take(n)?).map_err(|_| WireError::NotUtf8 { at })
    }

    /// A `string` whose writer is trusted to have put valid UTF-8 there (the heads the host
    /// writes from Rust strings, read in the guest): not checked, as a guest does not check
    /// the strings the canonical ABI lowers into it either.
    ///
    /// # Safety
    ///
    /// The string's bytes must be valid UTF-8.
    #[allow(unsafe_code)]
    pub unsafe fn str_unchecked(&mut self) -> Result<&'a str, WireError> {
        let n = self.u32()? as usize;
        let bytes = self.take(n)?;
        // SAFETY: the caller guarantees the bytes are UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
    }

    /// Checks that the whole buffer was read.
    pub fn finish(self) -> Result<(), WireError> {
        match self.buf.len() - self.at {
            0 => Ok(()),
            left => Err(WireError::Trailing { at: self.at, left }),
        }
    }
}

#[cfg(test)]
mod tests;
