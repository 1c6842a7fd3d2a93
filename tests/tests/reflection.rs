//! gRPC server reflection in both versions clients use: `grpc.reflection.v1` and the older
//! `v1alpha` (grpcurl before 1.8.8, Python's stock client, Postman), each listing the KMS
//! service and describing its methods.

use snpkms_e2e::Stack;
use tokio_stream::StreamExt;

#[tokio::test(flavor = "multi_thread")]
async fn both_reflection_versions_list_and_describe_the_kms_service() {
    let stack = Stack::start().await;
    let channel = tonic::transport::Channel::from_shared(stack.url())
        .unwrap()
        .connect()
        .await
        .unwrap();

    use tonic_reflection::pb::v1alpha as alpha;
    let mut client = alpha::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let ask = |request| alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let requests = tokio_stream::iter(vec![
        ask(alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
        ask(
            alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "snpkms.v1.Kms".into(),
            ),
        ),
    ]);
    let mut answers = client
        .server_reflection_info(requests)
        .await
        .expect("v1alpha reflection is served")
        .into_inner();
    let listed = answers.next().await.unwrap().unwrap();
    let Some(alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        listed.message_response
    else {
        panic!("not a service list: {listed:?}");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"snpkms.v1.Kms"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
    let described = answers.next().await.unwrap().unwrap();
    assert!(
        matches!(
            described.message_response,
            Some(alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(ref f))
                if !f.file_descriptor_proto.is_empty()
        ),
        "{described:?}"
    );

    use tonic_reflection::pb::v1;
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel);
    let requests = tokio_stream::iter(vec![v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    }]);
    let mut answers = client
        .server_reflection_info(requests)
        .await
        .expect("v1 reflection is served")
        .into_inner();
    let listed = answers.next().await.unwrap().unwrap();
    assert!(
        matches!(
            listed.message_response,
            Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(ref l))
                if l.service.iter().any(|s| s.name == "snpkms.v1.Kms")
        ),
        "{listed:?}"
    );
}
