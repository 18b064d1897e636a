"""The peers of kiln-serve in `benches/serve.sh`: the model a scikit-learn user would
serve instead, and KServe's Python model server around it.

  peers.py train TRAIN_PARQUET OUT_DIR   fit the pipeline, write OUT_DIR/model.joblib and
                                         OUT_DIR/mlserver/{settings,model-settings}.json
  peers.py kserve OUT_DIR HTTP_PORT      serve model.joblib with a custom kserve.Model (V1)
  peers.py bodies TEST_PARQUET OUT_DIR   the request bodies every server gets

The pipeline mirrors the Adult spec's transform (clip, log1p, standardise; one-hot with
minimum frequencies, missing as its own category) and the burn model's layer sizes
(64, 32, ReLU).
"""
import json
import os
import sys

import numpy as np
import pandas as pd

NUMERIC = ["age", "education-num", "hours-per-week", "capital-gain", "capital-loss"]
CATEGORICAL = {"workclass": 10, "marital-status": 1, "occupation": 10, "relationship": 1,
               "race": 1, "sex": 1, "native-country": 20}
COLUMNS = NUMERIC + list(CATEGORICAL)


def pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    transformers = [
        ("plain", StandardScaler(), ["age", "education-num"]),
        ("hours", make_pipeline(FunctionTransformer(np.clip, kw_args={"a_min": None, "a_max": 80}),
                                StandardScaler()), ["hours-per-week"]),
        ("money", make_pipeline(FunctionTransformer(np.log1p), StandardScaler()),
         ["capital-gain", "capital-loss"]),
    ]
    for column, min_frequency in CATEGORICAL.items():
        transformers.append((column, make_pipeline(
            SimpleImputer(strategy="constant", fill_value="<missing>"),
            OneHotEncoder(min_frequency=min_frequency, handle_unknown="infrequent_if_exist")),
            [column]))
    model = MLPClassifier(hidden_layer_sizes=(64, 32), activation="relu", solver="adam",
                          alpha=1e-4, batch_size=512, learning_rate_init=0.003, max_iter=30,
                          early_stopping=True, validation_fraction=0.1, n_iter_no_change=4,
                          random_state=42)
    return make_pipeline(ColumnTransformer(transformers), model)


def frame(records):
    df = pd.DataFrame.from_records(records, columns=COLUMNS)
    for c in CATEGORICAL:
        df[c] = df[c].astype(object).where(df[c].notna(), None)
    return df


def train(train_parquet, out):
    import joblib
    table = pd.read_parquet(train_parquet)
    model = pipeline().fit(frame(table[COLUMNS].to_dict("records")), table["income"])
    os.makedirs(f"{out}/mlserver", exist_ok=True)
    joblib.dump(model, f"{out}/model.joblib")
    with open(f"{out}/mlserver/model-settings.json", "w") as f:
        json.dump({"name": "adult-income", "implementation": "mlserver_sklearn.SKLearnModel",
                   "parameters": {"uri": f"{out}/model.joblib",
                                  "extra": {"predict_fn": "predict_proba"}}}, f)


def kserve(out, http_port):
    import joblib
    import kserve as ks

    class AdultModel(ks.Model):
        def __init__(self):
            super().__init__("adult-income")
            self.model = None

        def load(self):
            self.model = joblib.load(f"{out}/model.joblib")
            self.ready = True
            return self.ready

        def predict(self, payload, headers=None):
            p = self.model.predict_proba(frame(payload["instances"]))[:, 1]
            return {"predictions": [{"probability": float(x), "label": int(x >= 0.5)} for x in p]}

    model = AdultModel()
    model.load()
    ks.ModelServer(http_port=int(http_port), grpc_port=int(http_port) + 1, workers=1,
                   enable_grpc=False).start([model])


def bodies(test_parquet, out):
    table = pd.read_parquet(test_parquet)
    records = json.loads(table[COLUMNS].to_json(orient="records"))
    datatype = {c: "INT64" for c in NUMERIC} | {c: "BYTES" for c in CATEGORICAL}
    for n in (1, 64):
        rows = records[:n]
        with open(f"{out}/v1-{n}.json", "w") as f:
            json.dump({"instances": rows}, f)
        inputs = [{"name": c, "datatype": datatype[c], "shape": [n],
                   "data": [("" if r[c] is None else r[c]) for r in rows]} for c in COLUMNS]
        with open(f"{out}/v2-{n}.json", "w") as f:
            json.dump({"id": "bench", "inputs": inputs}, f)
        # MLServer decodes per-column inputs into a DataFrame with content_type pd.
        with open(f"{out}/mlserver-{n}.json", "w") as f:
            json.dump({"id": "bench", "parameters": {"content_type": "pd"}, "inputs": inputs}, f)


if __name__ == "__main__":
    {"train": train, "kserve": kserve, "bodies": bodies}[sys.argv[1]](*sys.argv[2:])
