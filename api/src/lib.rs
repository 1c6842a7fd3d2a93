//! The snpkms wire API, shared by nodes and guests so both sides compute the same bytes:
//! the gRPC types ([`pb`]), what a report must bind ([`binding`]), how keys travel
//! ([`seal`]), and how the KMS root key vouches for an app key ([`app_key_signature`]).

pub mod app_key_signature;
pub mod binding;
pub mod seal;

/// Generated protobuf and gRPC types of `snpkms.v1`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("snpkms.v1");
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
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("snpkms_descriptor");
