//! A lying RPC provider cannot make the node release a key.

use snpkms_e2e::*;
use snpkms_guest::{GuestClient, GuestClientError};
use snpkms_testkit::RpcProxy;
use snpkms_verifier::GuestPolicy;
use tonic::Code;

/// ABI encoding of `(true, "")`: what `isAppAllowed` returns when it allows.
const ALLOWED: &str = "0x\
0000000000000000000000000000000000000000000000000000000000000001\
0000000000000000000000000000000000000000000000000000000000000040\
0000000000000000000000000000000000000000000000000000000000000000";

#[tokio::test(flavor = "multi_thread")]
async fn one_lying_rpc_of_three_cannot_authorize() {
    let mut stack = Stack::start().await;
    let upstream = stack.fixture.chain.url.clone();
    let honest_a = RpcProxy::start(&upstream).await;
    let honest_b = RpcProxy::start(&upstream).await;
    let liar = RpcProxy::start(&upstream).await;
    let urls = [&honest_a, &honest_b, &liar].map(|p| p.url.clone().into());
    stack
        .reconfigure(|c| {
            c.chain.rpc_urls = urls.to_vec();
            c.chain.quorum = 2;
        })
        .await;

    // The liar answers every eth_call with "allowed" (its kmsInfo answers become garbage too).
    // Two honest endpoints of three out-vote it on every read, the node's own standing
    // included.
    liar.set_tamper(|req, resp| {
        if req.get("method").and_then(|m| m.as_str()) == Some("eth_call") {
            resp["result"] = serde_json::Value::String(ALLOWED.into());
        }
    });

    let app = stack.app();
    let rogue = guest_with(
        app,
        stack.compose_hash,
        [0x02; 48], // an OS image governance never allowed
        GuestPolicy::SMT | GuestPolicy::RESERVED_MBO,
    );
    let mut client = GuestClient::connect(&stack.url()).await.unwrap();
    for _ in 0..5 {
        match client
            .get_app_key(&rogue, app.0 .0, stack.compose_hash, None, stack.root)
            .await
        {
            Ok(_) => panic!("a lying RPC made the node release keys"),
            Err(GuestClientError::Refused { code, message }) => {
                assert_eq!(code, Code::PermissionDenied, "{message}");
                assert!(message.contains("os image not allowed"), "{message}");
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(liar.count("eth_call") > 0, "the liar was asked");
    // And the allowed guest still gets its keys: the liar cannot deny service either.
    let g = guest(app, stack.compose_hash);
    client
        .get_app_key(&g, app.0 .0, stack.compose_hash, None, stack.root)
        .await
        .expect("out-voted liar");
}
