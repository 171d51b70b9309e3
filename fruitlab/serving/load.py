"""A run's deployable model rebuilt as the eager PyTorch module it was trained as.

MLflow's loader returns the torch.export graph fruitlab logged; a benchmark or an exporter that wants the
original modules (for TorchScript, say) rebuilds the network from the run's `config.yaml` and copies the
logged weights into it.
"""

import mlflow
import torch
from omegaconf import OmegaConf
from torch import nn

from fruitlab.data.base import Normalize
from fruitlab.errors import ConfigError
from fruitlab.models import get_model
from fruitlab.serving.models import model_uri
from fruitlab.training.fit import MODEL_SETTINGS
from fruitlab.training.module import ImageClassifier, Probabilities
from fruitlab.training.transfer import load_source


def input_shape_of(uri: str) -> tuple[int, ...]:
    """Shape of one input example, from the logged model's signature (N, C, H, W) -> (C, H, W)."""
    signature = mlflow.models.get_model_info(uri).signature
    if signature is None or not signature.inputs.inputs:
        raise ConfigError(f"the model at {uri} has no input signature; log it with fruitlab")
    return tuple(signature.inputs.inputs[0].shape[1:])


def load_eager(reference: str) -> tuple[nn.Module, tuple[int, ...]]:
    """(class-probability model in eval mode, input shape) for a run id or an MLflow model URI
    (`models:/NAME@champion`, `runs:/RUN_ID/model`) of a fruitlab image classifier."""
    uri = model_uri(reference)
    source = load_source(uri)
    config = OmegaConf.create(mlflow.artifacts.load_text(f"runs:/{source.run_id}/config.yaml"))
    classes = mlflow.artifacts.load_dict(f"runs:/{source.run_id}/classes.json")["classes"]
    input_shape = input_shape_of(uri)
    options = {k: v for k, v in config.model.items() if k not in MODEL_SETTINGS}
    backbone = get_model(config.model.name, len(classes), input_shape, **options)
    channels = input_shape[0]
    classifier = ImageClassifier(Normalize(torch.zeros(channels), torch.ones(channels)), backbone)
    state = {name.removeprefix("classifier."): tensor for name, tensor in source.tensors.items()}
    classifier.load_state_dict(state)
    return Probabilities(classifier).eval(), input_shape
