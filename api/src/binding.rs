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

/// Domain separator of a SignAppKey report: see [`sign_app_key_report_data`].
pub const SIGN_APP_KEY_DOMAIN: &[u8] = b"snpkms/sign-app-key/v2";

/// What a guest's report must carry for SignAppKey (the threshold mode's KMS signature):
/// `SHA-512("snpkms/sign-app-key/v2" || nonce || app_signing_address || key_epoch (u32 BE))`.
/// The epoch is bound too: whoever relays the request must not get the address vouched for at
/// an epoch the guest did not derive it for.
pub fn sign_app_key_report_data(
    nonce: &[u8],
    app_signing_address: &[u8; 20],
    key_epoch: u32,
) -> [u8; 64] {
    Sha512::new()
        .chain_update(SIGN_APP_KEY_DOMAIN)
        .chain_update(nonce)
        .chain_update(app_signing_address)
        .chain_update(key_epoch.to_be_bytes())
        .finalize()
        .into()
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

/// Domain separator of a key-generation round-1 report: see [`keygen_round1_report_data`].
pub const KEYGEN_DOMAIN: &[u8] = b"snpkms/keygen/v1";
/// Domain separator of a key-generation result report: see [`keygen_result_report_data`].
pub const KEYGEN_RESULT_DOMAIN: &[u8] = b"snpkms/keygen-result/v1";

/// What a key-generation participant's round-1 message is bound to (`KeyGenRound1`):
/// `SHA-512("snpkms/keygen/v1" || session || index || threshold || participants (u16 BE
/// each) || config_digest || ephemeral_public_key || SHA-256(package))`.
pub fn keygen_round1_report_data(
    session: &[u8; 32],
    index: u16,
    threshold: u16,
    participants: u16,
    config_digest: &[u8; 32],
    ephemeral_public_key: &[u8; 32],
    package: &[u8],
) -> [u8; 64] {
    Sha512::new()
        .chain_update(KEYGEN_DOMAIN)
        .chain_update(session)
        .chain_update(index.to_be_bytes())
        .chain_update(threshold.to_be_bytes())
        .chain_update(participants.to_be_bytes())
        .chain_update(config_digest)
        .chain_update(ephemeral_public_key)
        .chain_update(sha2::Sha256::digest(package))
        .finalize()
        .into()
}

/// What a participant's key-generation result is bound to (what governance checks before it
/// records the share set): `SHA-512("snpkms/keygen-result/v1" || session || transcript ||
/// index || threshold (u16 BE) || signing_address || config_digest || group_key || for each
/// node in index order: index (u16 BE) || verifying_share)`.
pub struct KeygenResult<'a> {
    /// The session id.
    pub session: &'a [u8; 32],
    /// The hash of every round-1 package the participant used.
    pub transcript: &'a [u8; 32],
    /// The participant's index.
    pub index: u16,
    /// The threshold.
    pub threshold: u16,
    /// The participant's node signing address (from its share).
    pub signing_address: &'a [u8; 20],
    /// The participant's security-configuration digest.
    pub config_digest: &'a [u8; 32],
    /// The group key, compressed.
    pub group_key: &'a [u8; 33],
    /// Every node's verifying share, compressed, in index order.
    pub verifying_shares: &'a [(u16, [u8; 33])],
}

/// See [`KeygenResult`].
pub fn keygen_result_report_data(result: &KeygenResult<'_>) -> [u8; 64] {
    let mut hash = Sha512::new()
        .chain_update(KEYGEN_RESULT_DOMAIN)
        .chain_update(result.session)
        .chain_update(result.transcript)
        .chain_update(result.index.to_be_bytes())
        .chain_update(result.threshold.to_be_bytes())
        .chain_update(result.signing_address)
        .chain_update(result.config_digest)
        .chain_update(result.group_key);
    for (index, share) in result.verifying_shares {
        hash.update(index.to_be_bytes());
        hash.update(share);
    }
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keygen_bindings_name_every_field() {
        let base = super::keygen_round1_report_data(&[1; 32], 1, 2, 3, &[4; 32], &[5; 32], b"p");
        assert_ne!(
            base,
            super::keygen_round1_report_data(&[1; 32], 2, 2, 3, &[4; 32], &[5; 32], b"p")
        );
        assert_ne!(
            base,
            super::keygen_round1_report_data(&[1; 32], 1, 2, 3, &[4; 32], &[5; 32], b"q")
        );
        let shares = [(1u16, [2u8; 33]), (2, [3; 33])];
        let result = super::KeygenResult {
            session: &[1; 32],
            transcript: &[2; 32],
            index: 1,
            threshold: 2,
            signing_address: &[3; 20],
            config_digest: &[4; 32],
            group_key: &[5; 33],
            verifying_shares: &shares,
        };
        let other_shares = [(1u16, [2u8; 33]), (2, [4; 33])];
        assert_ne!(
            super::keygen_result_report_data(&result),
            super::keygen_result_report_data(&super::KeygenResult {
                verifying_shares: &other_shares,
                ..result
            })
        );
    }

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
