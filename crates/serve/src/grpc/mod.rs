//! The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`), with the
//! same semantics as the REST side. Tensors may come as typed `contents` or as
//! `raw_input_contents` (what tritonclient sends); a request with raw inputs gets raw
//! outputs back, as Triton answers.

pub mod proto;

#[allow(clippy::all, clippy::pedantic, missing_docs)]
mod generated {
    include!(concat!(
        env!("OUT_DIR"),
        "/inference.GRPCInferenceService.rs"
    ));
}

use std::time::Instant;

use proto::*;
use tonic::{Request, Response, Status};

use crate::error::ServeError;
use crate::http::{PLATFORM, requested_outputs};
use crate::inputs::{Tensor, TensorData};
use crate::service::{AppState, SERVER_NAME, SERVER_VERSION};

pub use generated::g_r_p_c_inference_service_server::GRPCInferenceServiceServer as GrpcInferenceServiceServer;

/// The gRPC service over the shared state.
pub struct InferenceService {
    state: AppState,
}

impl InferenceService {
    /// The service, refusing a message larger than `--max-body-bytes` from its length
    /// prefix, before reading or decoding it (tonic answers OUT_OF_RANGE naming the
    /// limit): the same bound as a REST body.
    pub fn new(state: AppState) -> GrpcInferenceServiceServer<InferenceService> {
        let limit = state.max_body_bytes();
        GrpcInferenceServiceServer::new(InferenceService { state }).max_decoding_message_size(limit)
    }
}

fn tensor_of(input: InferInputTensor, raw: Option<Vec<u8>>) -> Result<Tensor, ServeError> {
    let data = match raw {
        Some(bytes) => TensorData::Raw(bytes),
        None => {
            let c = input.contents.unwrap_or_default();
            match input.datatype.as_str() {
                "BOOL" => TensorData::Bools(c.bool_contents),
                "INT8" | "INT16" | "INT32" => {
                    TensorData::Ints(c.int_contents.into_iter().map(i64::from).collect())
                }
                "INT64" => TensorData::Ints(c.int64_contents),
                "UINT8" | "UINT16" | "UINT32" => {
                    TensorData::Uints(c.uint_contents.into_iter().map(u64::from).collect())
                }
                "UINT64" => TensorData::Uints(c.uint64_contents),
                "FP32" => TensorData::Floats(c.fp32_contents.into_iter().map(f64::from).collect()),
                "FP64" => TensorData::Floats(c.fp64_contents),
                "BYTES" => TensorData::Bytes(c.bytes_contents),
                // Let the decoder name the unknown datatype.
                _ => TensorData::Json(Vec::new()),
            }
        }
    };
    Ok(Tensor {
        name: input.name,
        datatype: input.datatype,
        shape: input.shape,
        data,
    })
}

impl InferenceService {
    async fn infer(&self, request: ModelInferRequest) -> Result<ModelInferResponse, ServeError> {
        let state = &self.state;
        state.check_model(&request.model_name, Some(&request.model_version))?;
        let _admission = state.admit()?;
        let raw = !request.raw_input_contents.is_empty();
        if raw && request.raw_input_contents.len() != request.inputs.len() {
            return Err(ServeError::bad(format!(
                "{} raw_input_contents for {} inputs; give one per input or none",
                request.raw_input_contents.len(),
                request.inputs.len()
            )));
        }
        let wanted: Vec<String> = request.outputs.iter().map(|o| o.name.clone()).collect();
        let (want_probability, want_label) = requested_outputs(&wanted)?;
        let mut raw_contents = request.raw_input_contents.into_iter();
        let tensors = request
            .inputs
            .into_iter()
            .map(|input| tensor_of(input, raw_contents.next()))
            .collect::<Result<Vec<_>, _>>()?;
        let id = state.request_id(Some(&request.id));
        let done = state
            .infer("v2_grpc", id, |schema| schema.from_tensors(tensors))
            .await?;
        let encode = Instant::now();
        let model = state.model();
        let n = done.scored.labels.len() as i64;
        let mut response = ModelInferResponse {
            model_name: model.name.clone(),
            model_version: model.version.clone(),
            id: done.request_id,
            ..Default::default()
        };
        let output =
            |name: &str, datatype: &str, contents: Option<InferTensorContents>| InferOutputTensor {
                name: name.into(),
                datatype: datatype.into(),
                shape: vec![n],
                contents,
                ..Default::default()
            };
        if want_probability {
            if raw {
                response.raw_output_contents.push(
                    done.scored
                        .probabilities
                        .iter()
                        .flat_map(|p| p.to_le_bytes())
                        .collect(),
                );
                response.outputs.push(output("probability", "FP32", None));
            } else {
                let contents = InferTensorContents {
                    fp32_contents: done.scored.probabilities.clone(),
                    ..Default::default()
                };
                response
                    .outputs
                    .push(output("probability", "FP32", Some(contents)));
            }
        }
        if want_label {
            let labels: Vec<i64> = done.scored.labels.iter().map(|&l| i64::from(l)).collect();
            if raw {
                response
                    .raw_output_contents
                    .push(labels.iter().flat_map(|l| l.to_le_bytes()).collect());
                response.outputs.push(output("label", "INT64", None));
            } else {
                let contents = InferTensorContents {
                    int64_contents: labels,
                    ..Default::default()
                };
                response
                    .outputs
                    .push(output("label", "INT64", Some(contents)));
            }
        }
        state
            .metrics()
            .postprocess
            .observe(encode.elapsed().as_secs_f64());
        Ok(response)
    }
}

#[tonic::async_trait]
impl generated::g_r_p_c_inference_service_server::GRPCInferenceService for InferenceService {
    async fn server_live(
        &self,
        _: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        let ready = self.state.metrics().ready.get() == 1;
        Ok(Response::new(ServerReadyResponse { ready }))
    }

    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        let r = request.into_inner();
        self.state
            .check_model(&r.name, Some(&r.version))
            .map_err(|e| e.grpc())?;
        let ready = self.state.metrics().ready.get() == 1;
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        Ok(Response::new(ServerMetadataResponse {
            name: SERVER_NAME.into(),
            version: SERVER_VERSION.into(),
            extensions: Vec::new(),
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let r = request.into_inner();
        self.state
            .check_model(&r.name, Some(&r.version))
            .map_err(|e| e.grpc())?;
        let model = self.state.model();
        let tensor = |name: &str, datatype: &str| TensorMetadata {
            name: name.into(),
            datatype: datatype.into(),
            shape: vec![-1],
        };
        Ok(Response::new(ModelMetadataResponse {
            name: model.name.clone(),
            versions: vec![model.version.clone()],
            platform: PLATFORM.into(),
            inputs: model
                .inputs
                .columns
                .iter()
                .map(|c| tensor(&c.name, c.v2_datatype()))
                .collect(),
            outputs: vec![tensor("probability", "FP32"), tensor("label", "INT64")],
        }))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let started = Instant::now();
        let result = self.infer(request.into_inner()).await;
        let code = match &result {
            Ok(_) => 200,
            Err(e) => e.status().as_u16(),
        };
        self.state.record("v2_grpc", code, started);
        result.map(Response::new).map_err(|e| e.grpc())
    }
}
