//! The certificate table of an extended report (GHCB extended guest request, `/dev/sev-guest`
//! `SNP_GET_EXT_REPORT`, configfs-tsm `auxblob`): 24-byte entries {GUID, offset, length} ended by
//! an all-zero entry, followed by the certificate bytes. The host writes it, so every offset and
//! length is untrusted: checked against the buffer, against each other and against sane sizes.

use crate::error::CertError;

/// Size of one table entry: a 16-byte GUID, a u32 offset and a u32 length (little-endian).
/// Offsets count from the start of the table.
pub const ENTRY_LEN: usize = 24;
/// No real table has more than a handful of entries (VCEK/VLEK, ASK, ARK, maybe a CRL).
pub const MAX_ENTRIES: usize = 16;
/// AMD certificates are under 2 KiB; a CRL can be larger but stays far below this.
pub const MAX_ENTRY_LEN: usize = 64 * 1024;

/// A certificate table GUID in RFC 4122 byte order (as `uuid::Uuid::as_bytes`, which is how the
/// kernel, QEMU and the `sev` crate write them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The VCEK, `63da758d-e664-4564-adc5-f4b93be8accd`.
    pub const VCEK: Guid = Guid(hex16("63da758de6644564adc5f4b93be8accd"));
    /// The VLEK, `a8074bc2-a25a-483e-aae6-39c045a0b8a1`.
    pub const VLEK: Guid = Guid(hex16("a8074bc2a25a483eaae639c045a0b8a1"));
    /// The ASK, `4ab7b379-bbac-4fe4-a02f-05aef327c782`.
    pub const ASK: Guid = Guid(hex16("4ab7b379bbac4fe4a02f05aef327c782"));
    /// The ARK, `c0b406a4-a803-4952-9743-3fb6014cd0ae`.
    pub const ARK: Guid = Guid(hex16("c0b406a4a803495297433fb6014cd0ae"));
    /// The all-zero GUID of the entry that ends the table.
    pub const ZERO: Guid = Guid([0; 16]);

    fn name(&self) -> &'static str {
        match *self {
            Guid::VCEK => "VCEK",
            Guid::VLEK => "VLEK",
            Guid::ASK => "ASK",
            Guid::ARK => "ARK",
            _ => "unknown",
        }
    }
}

/// Parses 32 lowercase hex digits at compile time.
const fn hex16(s: &str) -> [u8; 16] {
    let b = s.as_bytes();
    let mut out = [0u8; 16];
    let mut i = 0;
    let mut n = 0;
    while i < b.len() {
        let c = b[i];
        i += 1;
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("bad hex digit in GUID constant"),
        };
        out[n / 2] |= if n % 2 == 0 { v << 4 } else { v };
        n += 1;
    }
    assert!(n == 32, "GUID constant must have 32 hex digits");
    out
}

/// One entry of a certificate table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertTableEntry {
    /// What the entry holds; GUIDs other than the [`Guid`] constants are hosts' own.
    pub guid: Guid,
    /// The entry's bytes (a DER certificate for the known GUIDs), at most [`MAX_ENTRY_LEN`].
    pub data: Vec<u8>,
}

/// Parses a certificate table with bounds checks. Errors name the entry and the problem.
pub fn parse(buf: &[u8]) -> Result<Vec<CertTableEntry>, CertError> {
    let err = |msg: String| CertError::Table(msg);
    let mut headers = Vec::new();
    let mut index = 0usize;
    loop {
        let start = index * ENTRY_LEN;
        let Some(entry) = buf.get(start..start + ENTRY_LEN) else {
            return Err(err(format!(
                "no terminating all-zero entry within the {} bytes given",
                buf.len()
            )));
        };
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&entry[..16]);
        let offset = u32::from_le_bytes([entry[16], entry[17], entry[18], entry[19]]) as usize;
        let length = u32::from_le_bytes([entry[20], entry[21], entry[22], entry[23]]) as usize;
        if guid == [0; 16] {
            if offset != 0 || length != 0 {
                return Err(err(format!(
                    "terminating entry {index} has a zero GUID but offset {offset} / length {length}"
                )));
            }
            break;
        }
        if index == MAX_ENTRIES {
            return Err(err(format!("more than {MAX_ENTRIES} entries")));
        }
        headers.push((Guid(guid), offset, length));
        index += 1;
    }
    let table_end = (headers.len() + 1) * ENTRY_LEN;

    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(headers.len());
    let mut entries = Vec::with_capacity(headers.len());
    for (i, &(guid, offset, length)) in headers.iter().enumerate() {
        if length == 0 {
            return Err(err(format!("entry {i} ({}) is empty", guid.name())));
        }
        if length > MAX_ENTRY_LEN {
            return Err(err(format!(
                "entry {i} ({}) is {length} bytes, more than the {MAX_ENTRY_LEN} allowed",
                guid.name()
            )));
        }
        let end = offset
            .checked_add(length)
            .filter(|&end| end <= buf.len())
            .ok_or_else(|| {
                err(format!(
                    "entry {i} ({}) spans {offset}..{} beyond the {} bytes given",
                    guid.name(),
                    offset.saturating_add(length),
                    buf.len()
                ))
            })?;
        if offset < table_end {
            return Err(err(format!(
                "entry {i} ({}) at offset {offset} overlaps the table header (which ends at {table_end})",
                guid.name()
            )));
        }
        if let Some(&(o, e)) = spans.iter().find(|&&(o, e)| offset < e && o < end) {
            return Err(err(format!(
                "entry {i} ({}) at {offset}..{end} overlaps another entry at {o}..{e}",
                guid.name()
            )));
        }
        if entries.iter().any(|e: &CertTableEntry| e.guid == guid) {
            return Err(err(format!(
                "entry {i} repeats GUID {} ({})",
                hex::encode(guid.0),
                guid.name()
            )));
        }
        spans.push((offset, end));
        entries.push(CertTableEntry {
            guid,
            data: buf[offset..end].to_vec(),
        });
    }
    Ok(entries)
}

/// Writes a certificate table: the header entries, a zero entry, then the data, in order.
pub fn encode(entries: &[CertTableEntry]) -> Vec<u8> {
    let table_end = (entries.len() + 1) * ENTRY_LEN;
    let mut out =
        Vec::with_capacity(table_end + entries.iter().map(|e| e.data.len()).sum::<usize>());
    let mut offset = table_end;
    for e in entries {
        out.extend_from_slice(&e.guid.0);
        out.extend_from_slice(&(offset as u32).to_le_bytes());
        out.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
        offset += e.data.len();
    }
    out.extend_from_slice(&[0u8; ENTRY_LEN]);
    for e in entries {
        out.extend_from_slice(&e.data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(guid: Guid, len: usize, fill: u8) -> CertTableEntry {
        CertTableEntry {
            guid,
            data: vec![fill; len],
        }
    }

    fn put(buf: &mut [u8], index: usize, guid: Guid, offset: u32, len: u32) {
        let s = index * ENTRY_LEN;
        buf[s..s + 16].copy_from_slice(&guid.0);
        buf[s + 16..s + 20].copy_from_slice(&offset.to_le_bytes());
        buf[s + 20..s + 24].copy_from_slice(&len.to_le_bytes());
    }

    #[test]
    fn guid_constants_match_the_published_strings() {
        assert_eq!(
            hex::encode(Guid::VCEK.0),
            "63da758de6644564adc5f4b93be8accd"
        );
        assert_eq!(hex::encode(Guid::ARK.0), "c0b406a4a803495297433fb6014cd0ae");
    }

    #[test]
    fn round_trip() {
        let entries = vec![
            entry(Guid::VCEK, 100, 1),
            entry(Guid::ASK, 50, 2),
            entry(Guid::ARK, 70, 3),
        ];
        let buf = encode(&entries);
        assert_eq!(parse(&buf).unwrap(), entries);
    }

    #[test]
    fn empty_table_is_valid() {
        assert_eq!(parse(&[0u8; 24]).unwrap(), vec![]);
    }

    fn assert_table_err(buf: &[u8], needle: &str) {
        match parse(buf) {
            Err(CertError::Table(msg)) => assert!(msg.contains(needle), "{msg:?} lacks {needle:?}"),
            other => panic!("expected a table error containing {needle:?}, got {other:?}"),
        }
    }

    #[test]
    fn rejects_malformed_tables() {
        assert_table_err(&[], "no terminating");
        assert_table_err(&[1u8; 23], "no terminating");

        let mut buf = vec![0u8; 200];
        put(&mut buf, 0, Guid::VCEK, 72, 10);
        assert_table_err(&buf[..24], "no terminating");

        // Out of bounds, and an offset+length that overflows.
        put(&mut buf, 0, Guid::VCEK, 190, 20);
        assert_table_err(&buf, "beyond");
        put(&mut buf, 0, Guid::VCEK, u32::MAX - 1, 10);
        assert_table_err(&buf, "beyond");

        // Pointing into the header.
        put(&mut buf, 0, Guid::VCEK, 8, 10);
        assert_table_err(&buf, "overlaps the table header");

        // Overlapping entries.
        put(&mut buf, 0, Guid::VCEK, 72, 40);
        put(&mut buf, 1, Guid::ASK, 100, 40);
        assert_table_err(&buf, "overlaps another entry");

        // Duplicate GUIDs.
        put(&mut buf, 1, Guid::VCEK, 150, 10);
        assert_table_err(&buf, "repeats GUID");

        // Empty and huge entries.
        put(&mut buf, 1, Guid::ASK, 150, 0);
        assert_table_err(&buf, "is empty");
        put(&mut buf, 1, Guid::ASK, 150, (MAX_ENTRY_LEN + 1) as u32);
        assert_table_err(&buf, "more than");

        // A zero GUID with a non-zero length is not a terminator.
        let mut buf = vec![0u8; 48];
        put(&mut buf, 0, Guid::ZERO, 0, 5);
        assert_table_err(&buf, "terminating entry");

        // Too many entries.
        let mut buf = vec![0u8; (MAX_ENTRIES + 2) * ENTRY_LEN];
        for i in 0..=MAX_ENTRIES {
            let mut g = [0xEEu8; 16];
            g[0] = i as u8;
            put(&mut buf, i, Guid(g), 0, 1);
        }
        assert_table_err(&buf, "more than 16 entries");
    }
}
