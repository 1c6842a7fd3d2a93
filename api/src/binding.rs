//! What a guest puts in report_data, so that a report can only be used for the one request it
//! was made for: the node's fresh nonce (no replay) and the guest's ephemeral key (only that
//! guest can open the response).

use sha2::{Digest, Sha512};

/// Domain separator of a GetAppKey report: see [`get_app_key_report_data`].
pub const GET_APP_KEY_DOMAIN: &[u8] = b"snpkms/get-app-key/v1";
/// Domain separator of an Onboard report: see [`onboard_report_data`]. Distinct from
/// [`GET_APP_KEY_DOMAIN`], so a report made for one exchange never passes for the other.
pub const ONBOARD_DOMAIN: &[u8] = b"snpkms/onboard/v2";

/// `SHA-512(domain || nonce || ephemeral_public_key)`.
pub fn report_data(domain: &[u8], nonce: &[u8], ephemeral_public_key: &[u8]) -> [u8; 64] {
    Sha512::new()
        .chain_update(domain)
        .chain_update(nonce)
        .chain_update(ephemeral_public_key)
        .finalize()
        .into()
}

/// What a guest's report must carry for GetAppKey:
/// `SHA-512("snpkms/get-app-key/v1" || nonce || ephemeral_public_key)`, with the node's
/// 32-byte challenge nonce and the guest's 32-byte X25519 key (lengths are not checked here;
/// the node checks them).
pub fn get_app_key_report_data(nonce: &[u8], ephemeral_public_key: &[u8]) -> [u8; 64] {
    report_data(GET_APP_KEY_DOMAIN, nonce, ephemeral_public_key)
}

/// `SHA-512("snpkms/onboard/v2" || nonce || ephemeral_public_key || config_digest)`: the
/// joiner also commits to the security configuration it will seal the root under.
pub fn onboard_report_data(
    nonce: &[u8],
    ephemeral_public_key: &[u8],
    config_digest: &[u8; 32],
) -> [u8; 64] {
    Sha512::new()
        .chain_update(ONBOARD_DOMAIN)
        .chain_update(nonce)
        .chain_update(ephemeral_public_key)
        .chain_update(config_digest)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn domains_separate_the_two_uses() {
        let (n, k) = ([1u8; 32], [2u8; 32]);
        assert_ne!(
            super::get_app_key_report_data(&n, &k),
            super::onboard_report_data(&n, &k, &[0; 32])
        );
        assert_ne!(
            super::onboard_report_data(&n, &k, &[0; 32]),
            super::onboard_report_data(&n, &k, &[1; 32])
        );
        // Independently: python3 -c 'import hashlib;print(hashlib.sha512(b"snpkms/get-app-key/v1"+b"\x01"*32+b"\x02"*32).hexdigest())'
        assert_eq!(
            hex::encode(super::get_app_key_report_data(&n, &k)),
            "88c299f92d2a181adfa09a16186631db59310a7579d1df181becafccfcb0ed5ddce94696ce4af12dfe237ee9ca46f95b6d6419d1d69c5271cef559d511268dbb"
        );
    }
}
