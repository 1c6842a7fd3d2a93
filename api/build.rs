fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A vendored protoc, so that building needs no system package.
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    // The service code only with the `grpc` feature; the messages always.
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    tonic_prost_build::configure()
        .build_client(grpc)
        .build_server(grpc)
        .file_descriptor_set_path(out.join("snpkms_descriptor.bin"))
        .compile_protos(&["proto/snpkms/v1/kms.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
