//! Generates the gRPC service code of `inference.GRPCInferenceService` from a Rust
//! description (tonic-build's manual builder): no `.proto` file and no `protoc`. The
//! messages themselves are our own prost types in `src/grpc/proto.rs`.

fn main() {
    let method = |name: &str, route: &str, input: &str, output: &str| {
        tonic_build::manual::Method::builder()
            .name(name)
            .route_name(route)
            .input_type(format!("crate::grpc::proto::{input}"))
            .output_type(format!("crate::grpc::proto::{output}"))
            .codec_path("tonic_prost::ProstCodec")
            .build()
    };
    let service = tonic_build::manual::Service::builder()
        .name("GRPCInferenceService")
        .package("inference")
        .method(method(
            "server_live",
            "ServerLive",
            "ServerLiveRequest",
            "ServerLiveResponse",
        ))
        .method(method(
            "server_ready",
            "ServerReady",
            "ServerReadyRequest",
            "ServerReadyResponse",
        ))
        .method(method(
            "model_ready",
            "ModelReady",
            "ModelReadyRequest",
            "ModelReadyResponse",
        ))
        .method(method(
            "server_metadata",
            "ServerMetadata",
            "ServerMetadataRequest",
            "ServerMetadataResponse",
        ))
        .method(method(
            "model_metadata",
            "ModelMetadata",
            "ModelMetadataRequest",
            "ModelMetadataResponse",
        ))
        .method(method(
            "model_infer",
            "ModelInfer",
            "ModelInferRequest",
            "ModelInferResponse",
        ))
        .build();
    tonic_build::manual::Builder::new()
        .build_client(false)
        .compile(&[service]);
}
