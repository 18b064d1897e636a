"""Call a kiln-serve that serves TLS and wants a bearer token, with clients no one on the
project wrote, and check what each sees. Prints one JSON summary.

usage: secure_clients.py HTTPS_PORT GRPC_PORT MODEL RUN_DIR PKI_DIR TOKEN_FILE FAMILY

FAMILY:
  triton  tritonclient[http] over HTTPS and tritonclient[grpc] over TLS: refused without a
          token (401 / UNAUTHENTICATED), scores equal to evaluate's with it; the health
          endpoint open; then a token rotation and a certificate rotation, followed
          without a restart.
  kserve  the kserve package's REST client (V2) with the CA and the token.
  mtls    tritonclient[grpc] against a server that requires client certificates: refused
          without one, served with one.

tritonclient[grpc] and kserve register the same protobuf symbols, so one process imports
one of them.
"""
import asyncio
import json
import pathlib
import socket
import ssl
import sys
import time

import numpy as np
import pyarrow.parquet as pq

https_port, grpc_port, model, run, pki, token_file, family = sys.argv[1:8]
pki = pathlib.Path(pki)
ca = str(pki / "ca.pem")
ROWS = 1024
test = pq.read_table(f"{run}/prepare/test.parquet").to_pylist()[:ROWS]
expected = np.array(pq.read_table(f"{run}/evaluate/predictions.parquet").column("score").to_pylist()[:ROWS])
token = pathlib.Path(token_file).read_text().split()[0]
auth = {"authorization": f"Bearer {token}"}
summary = {}

COLUMNS = [
    ("age", "INT64"), ("workclass", "BYTES"), ("fnlwgt", "INT64"), ("education", "BYTES"),
    ("education-num", "INT64"), ("marital-status", "BYTES"), ("occupation", "BYTES"),
    ("relationship", "BYTES"), ("race", "BYTES"), ("sex", "BYTES"), ("capital-gain", "INT64"),
    ("capital-loss", "INT64"), ("hours-per-week", "INT64"), ("native-country", "BYTES"),
]


def column(rows, name, datatype):
    values = [r[name] for r in rows]
    if datatype == "BYTES":
        return np.array(["" if v is None else v for v in values], dtype=object)
    return np.array(values, dtype=np.int64)


def diff(scores):
    return float(np.max(np.abs(np.array(scores, dtype=np.float64) - expected)))


def peer_common_name(port):
    """The CN of the certificate a new TLS connection is shown."""
    context = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            subject = dict(x[0] for x in tls.getpeercert()["subject"])
            return subject["commonName"]


def input_names():
    """The model's inputs, from its V2 metadata over HTTPS with the token."""
    import urllib.request

    request = urllib.request.Request(f"https://localhost:{https_port}/v2/models/{model}", headers=auth)
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(pki / "client.pem", pki / "client.key")
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        return {i["name"] for i in json.load(response)["inputs"]}


def eventually(check, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def inputs_of(module, rows, names):
    inputs = []
    for name, datatype in COLUMNS:
        if name not in names:
            continue
        inp = module.InferInput(name, [len(rows)], datatype)
        if module.__name__.endswith("http"):
            inp.set_data_from_numpy(column(rows, name, datatype), binary_data=False)
        else:
            inp.set_data_from_numpy(column(rows, name, datatype))
        inputs.append(inp)
    return inputs


if family == "triton":
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    http = httpclient.InferenceServerClient(
        url=f"localhost:{https_port}", ssl=True, ssl_options={"ca_certs": ca}
    )
    summary["health_without_token"] = http.is_server_ready()
    names = {i["name"] for i in http.get_model_metadata(model, headers=auth)["inputs"]}
    try:
        http.get_model_metadata(model)
        summary["rest_without_token"] = "served"
    except InferenceServerException as e:
        summary["rest_without_token"] = str(e)
    result = http.infer(model, inputs_of(httpclient, test, names), headers=auth)
    summary["rest_max_abs_diff"] = diff(result.as_numpy("probability").tolist())

    grpc = grpcclient.InferenceServerClient(
        url=f"localhost:{grpc_port}", ssl=True, root_certificates=ca
    )
    try:
        grpc.infer(model, inputs_of(grpcclient, test[:2], names))
        summary["grpc_without_token"] = "served"
    except InferenceServerException as e:
        summary["grpc_without_token"] = f"{e.status()} {e.message()}"
    result = grpc.infer(model, inputs_of(grpcclient, test, names), headers=auth)
    summary["grpc_max_abs_diff"] = diff(result.as_numpy("probability").tolist())

    # Rotation of the token file: the new token in, the old one out, no restart.
    pathlib.Path(token_file).write_text("rotated-token\n")
    new = {"authorization": "Bearer rotated-token"}

    def rotated():
        try:
            http.get_model_metadata(model, headers=new)
        except InferenceServerException:
            return False
        try:
            http.get_model_metadata(model, headers=auth)
            return False
        except InferenceServerException:
            return True

    summary["token_rotated"] = eventually(rotated)
    # Rotation of the certificate: new connections are shown the new one.
    summary["certificate_before"] = peer_common_name(https_port)
    (pki / "server.key.new").write_bytes((pki / "rotated.key").read_bytes())
    (pki / "server.pem.new").write_bytes((pki / "rotated.pem").read_bytes())
    (pki / "server.key.new").replace(pki / "server.key")
    (pki / "server.pem.new").replace(pki / "server.pem")
    summary["certificate_rotated"] = eventually(
        lambda: peer_common_name(https_port) == "kiln-serve rotated"
        and peer_common_name(grpc_port) == "kiln-serve rotated"
    )
elif family == "kserve":
    import httpx
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    async def main():
        client = InferenceRESTClient(config=RESTConfig(protocol="v2", timeout=60, verify=ca))
        base = f"https://localhost:{https_port}"
        summary["kserve_live_without_token"] = await client.is_server_live(base)
        names = input_names()
        inputs = []
        for name, datatype in COLUMNS:
            if name not in names:
                continue
            inp = InferInput(name=name, shape=[len(test)], datatype=datatype)
            inp.set_data_from_numpy(column(test, name, datatype), binary_data=False)
            inputs.append(inp)
        request = InferRequest(model_name=model, infer_inputs=inputs, request_id="secure")
        try:
            await client.infer(base, request, model_name=model)
            summary["kserve_without_token"] = "served"
        except httpx.HTTPStatusError as e:
            summary["kserve_without_token"] = e.response.status_code
        result = await client.infer(base, request, model_name=model, headers=auth)
        out = {o.name: o for o in result.outputs}
        summary["kserve_max_abs_diff"] = diff(out["probability"].as_numpy().tolist())
        await client.close()

    asyncio.run(main())
elif family == "mtls":
    import grpc as grpclib
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    names = input_names()
    anonymous = grpcclient.InferenceServerClient(
        url=f"localhost:{grpc_port}", ssl=True, root_certificates=ca
    )
    try:
        anonymous.infer(model, inputs_of(grpcclient, test[:2], names), headers=auth, client_timeout=10)
        summary["mtls_without_certificate"] = "served"
    except InferenceServerException as e:
        summary["mtls_without_certificate"] = f"{e.status()}"
    known = grpcclient.InferenceServerClient(
        url=f"localhost:{grpc_port}",
        ssl=True,
        root_certificates=ca,
        private_key=str(pki / "client.key"),
        certificate_chain=str(pki / "client.pem"),
    )
    result = known.infer(model, inputs_of(grpcclient, test, names), headers=auth)
    summary["mtls_max_abs_diff"] = diff(result.as_numpy("probability").tolist())
print(json.dumps(summary))
