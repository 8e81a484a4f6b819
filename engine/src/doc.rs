//! What the three trees store, and how their entries are encoded.

use crate::error::Result;
use crate::format::{put_bytes, put_u64, Reader, Reduce};

/// The local document that holds the store's own counters. Its values must
/// equal a recount of the by-id tree in the same header.
pub const COUNTERS_DOC: &[u8] = b"_local/counters";

/// A document as a reader sees it (tombstones included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocInfo {
    /// The key.
    pub key: Vec<u8>,
    /// The seqno of this version.
    pub seqno: u64,
    /// Whether this version is a delete (tombstone).
    pub deleted: bool,
    /// The body (empty for a tombstone).
    pub value: Vec<u8>,
}

/// An entry of the by-seq tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqEntry {
    /// The seqno.
    pub seqno: u64,
    /// The key it belongs to.
    pub key: Vec<u8>,
    /// Whether it is a tombstone.
    pub deleted: bool,
}

/// The counters kept in [`COUNTERS_DOC`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Documents that are not deleted.
    pub live: u64,
    /// Tombstones.
    pub deleted: u64,
}

impl Counters {
    pub(crate) fn encode(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        put_u64(&mut out, self.live);
        put_u64(&mut out, self.deleted);
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Counters> {
        let mut r = Reader::new(bytes, 0, "counters doc");
        let c = Counters {
            live: r.u64()?,
            deleted: r.u64()?,
        };
        r.finish()?;
        Ok(c)
    }
}

/// A by-id value: where the body is and what version it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IdValue {
    pub seqno: u64,
    pub deleted: bool,
    pub body_pos: u64,
    pub body_len: u32,
}

impl IdValue {
    pub(crate) fn encode(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(21);
        put_u64(&mut out, self.seqno);
        out.push(u8::from(self.deleted));
        put_u64(&mut out, self.body_pos);
        out.extend_from_slice(&self.body_len.to_be_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<IdValue> {
        let mut r = Reader::new(bytes, 0, "by-id value");
        let v = IdValue {
            seqno: r.u64()?,
            deleted: r.bool()?,
            body_pos: r.u64()?,
            body_len: r.u32()?,
        };
        r.finish()?;
        Ok(v)
    }

    pub(crate) fn reduce(self) -> Reduce {
        Reduce {
            live: u64::from(!self.deleted),
            deleted: u64::from(self.deleted),
            bytes: u64::from(self.body_len),
        }
    }
}

/// A by-seq value: the key plus the same location as by-id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SeqValue {
    pub key: Vec<u8>,
    pub deleted: bool,
    pub body_pos: u64,
    pub body_len: u32,
}

impl SeqValue {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.key.len() + 17);
        put_bytes(&mut out, &self.key);
        out.push(u8::from(self.deleted));
        put_u64(&mut out, self.body_pos);
        out.extend_from_slice(&self.body_len.to_be_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<SeqValue> {
        let mut r = Reader::new(bytes, 0, "by-seq value");
        let v = SeqValue {
            key: r.bytes()?,
            deleted: r.bool()?,
            body_pos: r.u64()?,
            body_len: r.u32()?,
        };
        r.finish()?;
        Ok(v)
    }
}

/// The by-seq key of a seqno (big-endian, so byte order is seqno order).
pub(crate) fn seq_key(seqno: u64) -> Vec<u8> {
    seqno.to_be_bytes().to_vec()
}

pub(crate) fn seq_from_key(key: &[u8]) -> Result<u64> {
    let mut r = Reader::new(key, 0, "by-seq key");
    let s = r.u64()?;
    r.finish()?;
    Ok(s)
}

pub(crate) fn by_id_reduce(_key: &[u8], value: &[u8]) -> Result<Reduce> {
    Ok(IdValue::decode(value)?.reduce())
}

pub(crate) fn by_seq_reduce(_key: &[u8], value: &[u8]) -> Result<Reduce> {
    let v = SeqValue::decode(value)?;
    Ok(Reduce {
        live: u64::from(!v.deleted),
        deleted: u64::from(v.deleted),
        bytes: u64::from(v.body_len),
    })
}

pub(crate) fn local_reduce(_key: &[u8], value: &[u8]) -> Result<Reduce> {
    Ok(Reduce {
        live: 1,
        deleted: 0,
        bytes: value.len() as u64,
    })
}
