//! Serializes byte arrays as lowercase hex strings in JSON output.

pub fn serialize<S: serde::Serializer, const N: usize>(
    bytes: &[u8; N],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex::encode(bytes))
}
