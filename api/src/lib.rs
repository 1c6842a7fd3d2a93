//! The snpkms wire API, shared by nodes and guests so both sides compute the same bytes:
//! the gRPC types ([`pb`]), what a report must bind ([`binding`]), how keys travel
//! ([`seal`]), how an app's keys come out of a secret ([`app_keys`]), and how the KMS root
//! key vouches for an app key ([`app_key_signature`]) and for a node's key-release log
//! ([`audit_head`]).

#![warn(missing_docs)]

pub mod app_key_signature;
pub mod app_keys;
pub mod audit_head;
pub mod binding;
pub mod seal;
mod x25519_kem;

/// Generated protobuf (and, with the `grpc` feature, gRPC) types of `snpkms.v1`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/snpkms.v1.rs"));
}

/// Key material is wiped when the message is dropped, wherever it is.
impl Drop for pb::AppKeys {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.disk_key.zeroize();
        self.env_secret_key.zeroize();
        self.signing_key.zeroize();
    }
}

/// The encoded file descriptor set, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/snpkms_descriptor.bin"));
