"""The peers of `kiln tune` on the tables kiln-prepare wrote: Optuna's TPE sampler tuning
scikit-learn's MLPClassifier and LightGBM, with the same trial budget, the same kind of
validation part (10 % of train, held out by a seeded shuffle) and the same objective
(validation ROC AUC); the best configuration is refit on the whole train split and
scored on adult.test. A plain LightGBM with defaults is the reference line.

Usage: tune_peers.py TRAIN.parquet TEST.parquet TRIALS {mlp|lightgbm|lightgbm-defaults}
Prints one Markdown table row. Wall time covers the search and the refit; peak memory
is this process's maximum RSS."""

import resource
import sys
import time

import numpy as np
import optuna
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

train_path, test_path, trials, which = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
train = pd.read_parquet(train_path)
test = pd.read_parquet(test_path)
numeric = ["age", "education-num", "hours-per-week", "capital-gain", "capital-loss"]
categorical = {"workclass": 10, "marital-status": 1, "occupation": 10, "relationship": 1,
               "race": 1, "sex": 1, "native-country": 20}
fill = lambda frame: frame.assign(**{c: frame[c].fillna("<missing>") for c in categorical})
y_train, y_test = train["income"].to_numpy(), test["income"].to_numpy()


def mlp_features():
    transformers = [
        ("plain", StandardScaler(), ["age", "education-num"]),
        ("hours", make_pipeline(FunctionTransformer(lambda x: np.minimum(x, 80)), StandardScaler()), ["hours-per-week"]),
        ("money", make_pipeline(FunctionTransformer(np.log1p), StandardScaler()), ["capital-gain", "capital-loss"]),
    ]
    for column, min_frequency in categorical.items():
        transformers.append((column, OneHotEncoder(min_frequency=min_frequency, handle_unknown="infrequent_if_exist"), [column]))
    pre = ColumnTransformer(transformers)
    return pre.fit_transform(fill(train)), pre.transform(fill(test))


def tree_features():
    # The same columns; LightGBM takes the categoricals natively.
    def frame(f):
        out = fill(f)[numeric + list(categorical)].copy()
        for c in categorical:
            out[c] = pd.Categorical(out[c], categories=sorted(fill(train)[c].unique()))
        return out
    return frame(train), frame(test)


started = time.perf_counter()
if which == "mlp":
    from sklearn.neural_network import MLPClassifier
    X, X_test = mlp_features()

    def build(p):
        return MLPClassifier(hidden_layer_sizes=p["hidden"], activation="relu", solver="adam",
                             alpha=p["alpha"], batch_size=512, learning_rate_init=p["lr"],
                             max_iter=30, early_stopping=True, validation_fraction=0.1,
                             n_iter_no_change=4, random_state=42)

    def space(trial):
        return {"hidden": [(64, 32), (128, 64)][trial.suggest_int("hidden", 0, 1)],
                "alpha": trial.suggest_float("alpha", 1e-6, 1e-2, log=True),
                "lr": trial.suggest_float("lr", 1e-3, 1e-2, log=True)}
    name = f"Optuna {optuna.__version__} TPE + scikit-learn MLPClassifier"
else:
    import lightgbm as lgb
    X, X_test = tree_features()

    def build(p):
        return lgb.LGBMClassifier(verbose=-1, random_state=42, **p)

    def space(trial):
        return {"num_leaves": trial.suggest_int("num_leaves", 8, 128, log=True),
                "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
                "n_estimators": trial.suggest_int("n_estimators", 50, 500, log=True),
                "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True)}
    name = f"Optuna {optuna.__version__} TPE + LightGBM {lgb.__version__}"

if which == "lightgbm-defaults":
    best_value, params = float("nan"), {}
    name = name.replace(f"Optuna {optuna.__version__} TPE + ", "") + " (defaults, no search)"
    trials = 0
else:
    X_fit, X_val, y_fit, y_val = train_test_split(X, y_train, test_size=0.1, random_state=42)

    def objective(trial):
        model = build(space(trial)).fit(X_fit, y_fit)
        return roc_auc_score(y_val, model.predict_proba(X_val)[:, 1])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=7))
    study.optimize(objective, n_trials=trials)
    best_value = study.best_value
    params = space(optuna.trial.FixedTrial(study.best_params))
model = build(params).fit(X, y_train)
seconds = time.perf_counter() - started
proba = model.predict_proba(X_test)[:, 1]
auc = roc_auc_score(y_test, proba)
acc = accuracy_score(y_test, proba >= 0.5)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
best = "—" if trials == 0 else f"{best_value:.4f}"
print(f"| {name} | {trials} | {best} | {auc:.4f} | {acc:.4f} | {seconds:.1f} | {rss:.0f} |")
