//! Regenerates the simulator's ARK and ASK certificates from the committed fixture keys:
//! `cargo run -p snpkms-simulator --example gen-fixtures`. The keys themselves were made with
//! `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096`.

use der::EncodePem;
use snpkms_simulator::{AuthorityNames, SimAuthority};
use snpkms_verifier::Product;

fn pem(der: &[u8]) -> String {
    let cert: x509_cert::Certificate = der::Decode::from_der(der).expect("certificate");
    cert.to_pem(der::pem::LineEnding::LF).expect("PEM")
}

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
    let authority = SimAuthority::with_names(AuthorityNames::simulator());
    for product in Product::ALL {
        let name = product.amd_name().to_lowercase();
        for (kind, der) in [
            ("ark", authority.ark_der(product)),
            ("ask", authority.ask_der(product)),
        ] {
            std::fs::write(format!("{dir}/{kind}-{name}.pem"), pem(der)).expect("write");
        }
    }
    println!("wrote {dir}/ark-*.pem and ask-*.pem");
}
