"""Models recorded by fruitlab runs, loaded back by run id, runs:/ URI or registered-model URI, and rebuilt as
the eager PyTorch modules they were trained as."""

from dataclasses import dataclass

import torch
from omegaconf import DictConfig
from torch import nn

from fruitlab.data.base import Normalize
from fruitlab.models import Probabilities, build_classifier
from fruitlab.tracking.logged_models import describe_logged_model, load_logged_model, load_run_config
from fruitlab.tracking.store import Store


@dataclass
class RecordedModel:
    uri: str
    run_id: str  # the run that logged it
    module: nn.Module  # float images in [0, 1], (N, C, H, W) -> class probabilities
    classes: list[str]
    input_shape: tuple[int, int, int]  # (C, H, W)


def load_recorded_model(store: Store, reference: str, allow_pickle: bool | None = None) -> RecordedModel:
    """The model `reference` names in `store`, loaded by tracking's one safe path (a pickled model only with
    `allow_pickle`)."""
    logged = describe_logged_model(store, reference)
    module = load_logged_model(store, logged, allow_pickle)
    return RecordedModel(logged.uri, logged.run_id, module, logged.classes, logged.input_shape)


def rebuild_eager(recorded: RecordedModel, config: DictConfig, preprocess: nn.Module, input_shape: tuple) -> nn.Module:
    """The recorded network as an eager class-probability module in eval mode (the logged model is an exported
    graph): built from the run's config around `preprocess` (the network's input is `input_shape` after it),
    then given the recorded weights, the preprocessing's fitted buffers included."""
    classifier = build_classifier(config.model, len(recorded.classes), input_shape, preprocess)
    model = Probabilities(classifier)
    model.load_state_dict(recorded.module.state_dict())
    return model.eval()


def load_eager(store: Store, reference: str, allow_pickle: bool | None = None) -> tuple[nn.Module, tuple[int, ...]]:
    """(class-probability model in eval mode, input shape) for a run id or an MLflow model URI
    (`models:/NAME@champion`, `runs:/RUN_ID/model`) of a fruitlab image classifier whose input is normalised
    images (every model but the PCA ones, whose preprocessing needs the run's data: see serving.quantize)."""
    recorded = load_recorded_model(store, reference, allow_pickle)
    channels = recorded.input_shape[0]
    preprocess = Normalize(torch.zeros(channels), torch.ones(channels))  # its fitted buffers are then loaded
    config = load_run_config(store, recorded.run_id)
    return rebuild_eager(recorded, config, preprocess, recorded.input_shape), recorded.input_shape
