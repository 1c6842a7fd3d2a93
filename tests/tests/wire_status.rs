//! What tonic refuses before a handler runs answers with gRPC's conventional codes, seen from a
//! client that writes the request frame's bytes itself: bytes that are no protobuf message are
//! INVALID_ARGUMENT, a message over the size limit RESOURCE_EXHAUSTED; and they are counted in
//! the request metrics like the handlers' answers.

use bytes::{Buf, BufMut};
use snpkms_e2e::Stack;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Code;

/// Sends the bytes given as the message, as they are.
#[derive(Default)]
struct Raw;

struct RawEncoder;
struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let bytes = src.copy_to_bytes(src.remaining()).to_vec();
        Ok(Some(bytes))
    }
}

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

async fn send(stack: &Stack, bytes: Vec<u8>) -> tonic::Status {
    send_to(stack, "/snpkms.v1.Kms/GetAppKey", bytes).await
}

async fn send_to(stack: &Stack, path: &str, bytes: Vec<u8>) -> tonic::Status {
    let channel = tonic::transport::Channel::from_shared(stack.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    grpc.unary(tonic::Request::new(bytes), path.parse().unwrap(), Raw)
        .await
        .unwrap_err()
}

#[tokio::test(flavor = "multi_thread")]
async fn undecodable_and_oversized_requests_get_grpcs_conventional_codes() {
    let stack = Stack::start().await;
    // Field 1 announced as 100 bytes long, with none following.
    let undecodable = send(&stack, vec![0x0a, 0x64]).await;
    assert_eq!(undecodable.code(), Code::InvalidArgument, "{undecodable:?}");
    // Over max_request_bytes (64 KiB by default).
    let mut huge = vec![0x0a];
    huge.extend(prost_length(10 << 20));
    huge.resize(10 << 20, 0);
    let oversized = send(&stack, huge).await;
    assert_eq!(oversized.code(), Code::ResourceExhausted, "{oversized:?}");
    // A handler's own answers are untouched: an empty request lacks its evidence.
    let empty = send(&stack, Vec::new()).await;
    assert_eq!(empty.code(), Code::InvalidArgument, "{empty:?}");

    // Methods that are not the service's answer UNIMPLEMENTED, counted under one label.
    for path in ["/snpkms.v1.Kms/NoSuchMethod", "/attacker.Chosen/Label"] {
        let status = send_to(&stack, path, Vec::new()).await;
        assert_eq!(status.code(), Code::Unimplemented, "{path}: {status:?}");
    }
    // Counted: the router's refusals beside the handler's, each once.
    let addr = stack.node.as_ref().unwrap().metrics_addr.unwrap();
    let metrics = snpkms_e2e::metrics_text(&addr.to_string()).await;
    for line in [
        r#"snpkms_requests_total{method="GetAppKey",code="InvalidArgument"} 2"#,
        r#"snpkms_requests_total{method="GetAppKey",code="ResourceExhausted"} 1"#,
        r#"snpkms_requests_total{method="unknown",code="Unimplemented"} 2"#,
        r#"snpkms_request_duration_seconds_count{method="GetAppKey"} 3"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }
    assert!(
        !metrics.contains("attacker"),
        "a client chose a label value"
    );
}

/// A protobuf varint.
fn prost_length(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_whose_answer_never_comes_is_counted_as_cancelled() {
    let stack = Stack::start().await;
    let app = stack.app();
    let guest = snpkms_e2e::guest(app, stack.compose_hash);
    // The chain stops answering: the guest's (uncached) authorization read hangs, and the
    // client gives up, which drops the handler mid-way.
    stack.proxy.set_hang(true);
    let mut client = stack.client().await;
    let gave_up = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        client.get_app_key(&guest, app.0 .0, stack.compose_hash, None, stack.root),
    )
    .await;
    if let Ok(answer) = gave_up {
        panic!("the request was answered: {:?}", answer.err());
    }
    drop(client);
    let addr = stack.node.as_ref().unwrap().metrics_addr.unwrap();
    let line = r#"snpkms_requests_total{method="GetAppKey",code="Cancelled"} 1"#;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let metrics = snpkms_e2e::metrics_text(&addr.to_string()).await;
        if metrics.lines().any(|l| l == line) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {line:?} in\n{metrics}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    stack.proxy.set_hang(false);
}
