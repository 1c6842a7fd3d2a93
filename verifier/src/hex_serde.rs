//! Byte arrays as lowercase hex strings: in JSON output, and in policy files.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub fn serialize<S: Serializer, const N: usize>(
    bytes: &[u8; N],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex::encode(bytes))
}

/// `N` bytes written as `2N` hex digits (an optional `0x` prefix is accepted when reading), as
/// policy files give digests and identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HexBytes<const N: usize>(pub [u8; N]);

impl<const N: usize> Serialize for HexBytes<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize(&self.0, serializer)
    }
}

impl<'de, const N: usize> Deserialize<'de> for HexBytes<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let digits = text.strip_prefix("0x").unwrap_or(&text);
        let bytes = hex::decode(digits)
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not hex: {e}")))?;
        let array: [u8; N] = bytes.try_into().map_err(|b: Vec<u8>| {
            serde::de::Error::custom(format!("{} bytes of hex, expected {N}", b.len()))
        })?;
        Ok(HexBytes(array))
    }
}
