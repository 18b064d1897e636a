"""scikit-learn's MLPClassifier on the tables kiln-prepare wrote, configured like the
Adult example spec: hidden layers (64, 32), ReLU, Adam, batch 512, learning rate 0.003,
early stopping on 10 % of train with patience 4, at most 30 epochs. Preprocessing as
close to the spec's transform as scikit-learn allows (clip, log1p, standardise; one-hot
with a minimum frequency and an unknown bucket; missing as its own category).
Prints one Markdown table row."""

import resource
import sys
import time

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

train = pd.read_parquet(sys.argv[1])
test = pd.read_parquet(sys.argv[2])
numeric_plain = ["age", "education-num"]
categorical = {"workclass": 10, "marital-status": 1, "occupation": 10, "relationship": 1,
               "race": 1, "sex": 1, "native-country": 20}
transformers = [
    ("plain", StandardScaler(), numeric_plain),
    ("hours", make_pipeline(FunctionTransformer(lambda x: np.minimum(x, 80)), StandardScaler()), ["hours-per-week"]),
    ("money", make_pipeline(FunctionTransformer(np.log1p), StandardScaler()), ["capital-gain", "capital-loss"]),
]
for column, min_frequency in categorical.items():
    transformers.append((column, OneHotEncoder(min_frequency=min_frequency, handle_unknown="infrequent_if_exist"), [column]))
pre = ColumnTransformer(transformers)
fill = lambda frame: frame.assign(**{c: frame[c].fillna("<missing>") for c in categorical})
X_train = pre.fit_transform(fill(train))
X_test = pre.transform(fill(test))
y_train, y_test = train["income"].to_numpy(), test["income"].to_numpy()

model = MLPClassifier(hidden_layer_sizes=(64, 32), activation="relu", solver="adam",
                      alpha=1e-4, batch_size=512, learning_rate_init=0.003, max_iter=30,
                      early_stopping=True, validation_fraction=0.1, n_iter_no_change=4,
                      tol=1e-6, random_state=42)
started = time.perf_counter()
model.fit(X_train, y_train)
seconds = time.perf_counter() - started
fitted_rows = int(round(len(y_train) * 0.9))
proba = model.predict_proba(X_test)[:, 1]
auc = roc_auc_score(y_test, proba)
acc = accuracy_score(y_test, proba >= 0.5)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"| scikit-learn {__import__('sklearn').__version__} MLPClassifier | {model.n_iter_} | {seconds:.2f} | "
      f"{seconds / model.n_iter_:.3f} | {fitted_rows * model.n_iter_ / seconds:,.0f} | {auc:.4f} | {acc:.4f} | {rss:.0f} |")
