"""Send every row of a prepared table to a running kiln-serve through clients that no one
on the project wrote -- plain HTTP (KServe V1), tritonclient[http] and tritonclient[grpc]
(V2), the kserve package's REST client (V1 and V2) -- and compare each protocol's scores
and decisions with evaluate's predictions.parquet and fairness's decisions.parquet.

usage: clients.py HTTP_PORT GRPC_PORT MODEL RUN_DIR triton|kserve  -> prints one JSON summary

tritonclient[grpc] and kserve register the same protobuf symbols (`inference.*`), so
one process imports one of them: the test runs this script once per client family.
"""
import asyncio
import json
import sys
import urllib.request

import numpy as np
import pyarrow.parquet as pq
import tritonclient.http as httpclient

http_port, grpc_port, model, run, family = sys.argv[1:6]
if family == "triton":
    import tritonclient.grpc as grpcclient
else:
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
CHUNK = 512

test = pq.read_table(f"{run}/prepare/test.parquet").to_pylist()
predictions = pq.read_table(f"{run}/evaluate/predictions.parquet").to_pydict()
decisions = pq.read_table(f"{run}/fairness/decisions.parquet").to_pydict()
# evaluate's rows are in test order; check it rather than assume it.
assert predictions["row_id"] == [r["row_id"] for r in test], "row order"
expected_scores = np.array(predictions["score"])
expected_labels = np.array(decisions["decision"])

meta = httpclient.InferenceServerClient(url=f"127.0.0.1:{http_port}").get_model_metadata(model)
columns = [(i["name"], i["datatype"]) for i in meta["inputs"]]
summary = {
    "rows": len(test),
    "inputs": columns,
    "outputs": [o["name"] for o in meta["outputs"]],
    "protocols": {},
}
if family == "triton":
    grpc_meta = grpcclient.InferenceServerClient(url=f"127.0.0.1:{grpc_port}").get_model_metadata(
        model, as_json=True
    )
    summary["grpc_inputs"] = [(i["name"], i["datatype"]) for i in grpc_meta["inputs"]]


def column(rows, name, datatype):
    values = [r[name] for r in rows]
    if datatype == "BYTES":
        # V2 has no null: an empty text is a missing value.
        return np.array(["" if v is None else v for v in values], dtype=object)
    return np.array(values, dtype=np.int64 if datatype == "INT64" else np.float64)


def v1(rows):
    body = json.dumps({"instances": [{n: r[n] for n, _ in columns} for r in rows]}).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{http_port}/v1/models/{model}:predict",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    out = json.load(urllib.request.urlopen(req))["predictions"]
    return [p["probability"] for p in out], [p["label"] for p in out]


triton_http = httpclient.InferenceServerClient(url=f"127.0.0.1:{http_port}")


def v2_triton_http(rows):
    inputs = []
    for name, datatype in columns:
        inp = httpclient.InferInput(name, [len(rows)], datatype)
        inp.set_data_from_numpy(column(rows, name, datatype), binary_data=False)
        inputs.append(inp)
    outputs = [httpclient.InferRequestedOutput(n, binary_data=False) for n in ("probability", "label")]
    res = triton_http.infer(model, inputs, outputs=outputs)
    return res.as_numpy("probability").tolist(), res.as_numpy("label").tolist()


def v2_triton_grpc(rows):
    triton_grpc = grpcclient.InferenceServerClient(url=f"127.0.0.1:{grpc_port}")
    inputs = []
    for name, datatype in columns:
        inp = grpcclient.InferInput(name, [len(rows)], datatype)
        inp.set_data_from_numpy(column(rows, name, datatype))
        inputs.append(inp)
    res = triton_grpc.infer(model, inputs)
    return res.as_numpy("probability").tolist(), res.as_numpy("label").tolist()


async def kserve_client(chunks):
    """The kserve package's REST client, V2 for the scores, V1 for the first chunk."""
    client = InferenceRESTClient(config=RESTConfig(protocol="v2", timeout=60))
    base = f"http://127.0.0.1:{http_port}"
    assert await client.is_server_live(base)
    assert await client.is_model_ready(base, model)
    scores, labels = [], []
    for n, rows in enumerate(chunks):
        inputs = []
        for name, datatype in columns:
            inp = InferInput(name=name, shape=[len(rows)], datatype=datatype)
            inp.set_data_from_numpy(column(rows, name, datatype), binary_data=False)
            inputs.append(inp)
        res = await client.infer(base, InferRequest(model_name=model, infer_inputs=inputs, request_id=f"kserve-{n}"), model_name=model)
        out = {o.name: o for o in res.outputs}
        scores += out["probability"].as_numpy().tolist()
        labels += out["label"].as_numpy().tolist()
    v1_client = InferenceRESTClient(config=RESTConfig(protocol="v1", timeout=60))
    v1 = await v1_client.infer(base, {"instances": [{n: r[n] for n, _ in columns} for r in chunks[0]]}, model_name=model)
    await client.close()
    await v1_client.close()
    return scores, labels, [p["probability"] for p in v1["predictions"]]


chunks = [test[i : i + CHUNK] for i in range(0, len(test), CHUNK)]


def compare(name, scores, labels):
    scores = np.array(scores, dtype=np.float64)
    labels = np.array(labels)
    summary["protocols"][name] = {
        "rows": int(len(scores)),
        "max_abs_diff": float(np.max(np.abs(scores - expected_scores))) if len(scores) == len(expected_scores) else None,
        "decision_mismatches": int(np.sum(labels != expected_labels)) if len(labels) == len(expected_labels) else None,
    }


if family == "triton":
    for name, send in [("v1", v1), ("v2_rest_tritonclient", v2_triton_http), ("v2_grpc_tritonclient", v2_triton_grpc)]:
        scores, labels = [], []
        for rows in chunks:
            s, l = send(rows)
            scores += s
            labels += l
        compare(name, scores, labels)
else:
    scores, labels, v1_first = asyncio.run(kserve_client(chunks))
    compare("v2_rest_kserve", scores, labels)
    summary["kserve_v1_first_chunk_max_abs_diff"] = float(
        np.max(np.abs(np.array(v1_first) - expected_scores[: len(v1_first)]))
    )
print(json.dumps(summary))
