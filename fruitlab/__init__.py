"""fruitlab: experiment tracking and hyperparameter search for image classification."""

import os

__version__ = "0.1.0"

# Models are read back through MLflow's loaders. MLflow unpickles by default; fruitlab logs its models with
# torch.export, which needs no pickle, so refuse pickled models and have MLflow check every archive for pickle
# payloads before loading it. MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true loads a pickled model you trust.
os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
