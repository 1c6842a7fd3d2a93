//! EFI GUIDs in their on-disk (mixed-endian) byte order, written as the usual strings.

/// A GUID as it is stored in firmware: the first three fields little-endian, the rest as is.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Guid(pub(crate) [u8; 16]);

impl Guid {
    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` at compile time, so a typo in a constant
    /// fails the build rather than a measurement.
    pub(crate) const fn parse(s: &str) -> Guid {
        let s = s.as_bytes();
        assert!(s.len() == 36, "GUID literal must be 36 characters");
        let mut be = [0u8; 16];
        let mut i = 0;
        let mut n = 0;
        while i < s.len() {
            if s[i] == b'-' {
                i += 1;
                continue;
            }
            be[n / 2] = (be[n / 2] << 4) | hex_digit(s[i]);
            n += 1;
            i += 1;
        }
        assert!(n == 32, "GUID literal must have 32 hex digits");
        Guid([
            be[3], be[2], be[1], be[0], be[5], be[4], be[7], be[6], be[8], be[9], be[10], be[11],
            be[12], be[13], be[14], be[15],
        ])
    }

    pub(crate) fn from_bytes(bytes: [u8; 16]) -> Guid {
        Guid(bytes)
    }
}

const fn hex_digit(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("GUID literal has a non-hex digit"),
    }
}

impl std::fmt::Display for Guid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]
        )?;
        write!(f, "{:02x}{:02x}-", b[8], b[9])?;
        for byte in &b[10..] {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Guid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::Guid;

    #[test]
    fn round_trips_and_uses_mixed_endian_layout() {
        let text = "96b582de-1fb2-45f7-baea-a366c55a082d";
        let guid = Guid::parse(text);
        assert_eq!(
            guid.0,
            [
                0xde, 0x82, 0xb5, 0x96, 0xb2, 0x1f, 0xf7, 0x45, 0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a,
                0x08, 0x2d
            ]
        );
        assert_eq!(guid.to_string(), text);
    }
}
