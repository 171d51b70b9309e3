"""Transfer learning: start a network from another run's weights and train only its last layers.

`model.init_from` says where the weights come from:
- a run id (32 hex digits): the model that run logged (`runs:/<id>/model`) in the run's own store;
- an MLflow model URI: `models:/NAME@ALIAS`, `models:/NAME/VERSION` or `runs:/<id>/<path>`;
- a checkpoint file: a Lightning checkpoint of a fruitlab run (`<store>/checkpoints/<run_id>/*.ckpt`) or a
  state dict saved with `torch.save`.
Logged models are read by MLflow's loader (fruitlab logs them with torch.export: no pickle) and checkpoints by
`torch.load(weights_only=True)`. Every tensor whose name and shape match the new network is copied. Only the
classifier head (the last layer that owns parameters) may differ: when its shape differs (another class count)
it keeps its fresh initialisation. The input normalisation is not copied: it is fitted on the new training
split.

`model.freeze` says what stays trainable (a layer is a module that owns parameters: a convolution, a batch
norm, a linear layer, in definition order):
- null: everything;
- N: all but the last N layers are frozen (1: only the head trains);
- a module name or a list of them (`[layer4,fc]`, names as in `named_modules()`): all but these are frozen.
Frozen batch-norm layers also keep their running statistics (they run in eval mode, as Keras does).
"""

import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, ListConfig
from torch import nn

from fruitlab.errors import ConfigError, ModelError
from fruitlab.tracking.logged_models import describe_logged_model, load_logged_model
from fruitlab.tracking.runs import RunRecorder
from fruitlab.tracking.store import Store

RUN_ID = re.compile(r"[0-9a-f]{32}")
MODEL_URI_SCHEMES = ("models:/", "runs:/")
# Where a network's tensors sit in what fruitlab saves: the LightningModule's checkpoint and the logged model
# both hold the ImageClassifier as `classifier`; an ImageClassifier's own state dict has `backbone.` only.
BACKBONE_PREFIXES = ("classifier.backbone.", "backbone.")


@dataclass
class SourceWeights:
    tensors: dict[str, torch.Tensor]  # by name, as saved (see BACKBONE_PREFIXES)
    reference: str  # the URI or absolute path they were read from
    run_id: str | None  # the run that produced them, when known


def _tensors(state: dict[str, object]) -> dict[str, torch.Tensor]:
    return {name: value for name, value in state.items() if isinstance(value, torch.Tensor)}


def backbone_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network's tensors, names relative to the network."""
    for prefix in BACKBONE_PREFIXES:
        if any(name.startswith(prefix) for name in tensors):
            return {name.removeprefix(prefix): v for name, v in tensors.items() if name.startswith(prefix)}
    return tensors


def load_source(store: Store, init_from: str) -> SourceWeights:
    """Read the weights `init_from` names (see the module's docstring), a logged model from `store`."""
    if RUN_ID.fullmatch(init_from):
        return _from_model_uri(store, f"runs:/{init_from}/model", init_from)
    if init_from.startswith(MODEL_URI_SCHEMES):
        return _from_model_uri(store, init_from, init_from)
    path = Path(init_from).expanduser()
    if path.is_file():
        return _from_checkpoint(path.resolve())
    raise ConfigError(
        f"model.init_from={init_from} is neither a run id (32 hex digits), an MLflow model URI "
        "(models:/NAME@ALIAS, runs:/RUN_ID/model) nor an existing checkpoint file."
    )


def _from_model_uri(store: Store, uri: str, given: str) -> SourceWeights:
    try:
        logged = describe_logged_model(store, uri)
        model = load_logged_model(store, logged)
    except ModelError as error:
        raise ConfigError(
            f"model.init_from={given}: {str(error).rstrip('.')}; for a run logged with tracking.log_model=false, "
            "give its checkpoint file instead."
        ) from error
    return SourceWeights(_tensors(model.state_dict()), uri, logged.run_id)


def _from_checkpoint(path: Path) -> SourceWeights:
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError) as error:
        raise ConfigError(
            f"model.init_from={path} cannot be read as a checkpoint of tensors ({error}); give a fruitlab "
            "checkpoint (.ckpt) or a state dict saved with torch.save."
        ) from error
    if not isinstance(content, dict):
        raise ConfigError(f"model.init_from={path} holds a {type(content).__name__}, not a state dict.")
    state = content.get("state_dict", content)
    # fruitlab keeps a run's checkpoints in <store>/checkpoints/<run_id>/.
    run_id = path.parent.name if RUN_ID.fullmatch(path.parent.name) else None
    return SourceWeights(_tensors(state), str(path), run_id)


def parameter_layers(network: nn.Module) -> list[str]:
    """Names of the modules that own parameters directly, in definition order."""
    return [name for name, module in network.named_modules() if any(True for _ in module.parameters(False))]


def _within(name: str, module_name: str) -> bool:
    return name == module_name or name.startswith(f"{module_name}.")


def copy_weights(network: nn.Module, source: SourceWeights) -> list[str]:
    """Copy the matching tensors of `source` into `network`; return the names left as initialised (the
    head's). Raise ConfigError when anything but the head does not fit."""
    target = network.state_dict()
    tensors = backbone_tensors(source.tensors)
    head = parameter_layers(network)[-1]
    fitting = {k: v for k, v in tensors.items() if k in target and v.shape == target[k].shape}
    misfits = sorted((set(tensors) | set(target)) - set(fitting))
    not_head = [name for name in misfits if not _within(name, head)]
    if not_head:
        raise ConfigError(
            f"model.init_from={source.reference} does not fit this model.name: {', '.join(not_head[:5])}"
            f"{' ...' if len(not_head) > 5 else ''} differ or are missing. Start from a run of the same "
            "architecture (and the same model options)."
        )
    network.load_state_dict(fitting, strict=False)
    return [name for name in misfits if name in target]


def freeze(network: nn.Module, spec: int | str | list[str]) -> list[str]:
    """Freeze all but the last `spec` layers, or all but the modules named in `spec`; return the trainable
    layers. Frozen batch norms are put in eval mode so that their running statistics stay as loaded."""
    layers = parameter_layers(network)
    modules = dict(network.named_modules())
    if isinstance(spec, int) and not isinstance(spec, bool):
        if not 1 <= spec <= len(layers):
            raise ConfigError(f"model.freeze={spec}: give a number of last layers to train, 1..{len(layers)}")
        keep = layers[-spec:]
    else:
        keep = [spec] if isinstance(spec, str) else [str(name) for name in spec]
        unknown = [name for name in keep if name not in modules]
        if unknown:
            raise ConfigError(
                f"model.freeze: no module named {', '.join(unknown)}; top-level modules: "
                f"{', '.join(name for name, _ in network.named_children())}"
            )
    trainable = [layer for layer in layers if any(_within(layer, name) for name in keep)]
    for layer in layers:
        module = modules[layer]
        for parameter in module.parameters(recurse=False):
            parameter.requires_grad = layer in trainable
        if layer not in trainable and isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
    return trainable


def apply_transfer(recorder: RunRecorder, model_cfg: DictConfig, network: nn.Module) -> None:
    """Initialise and freeze `network` as `model.init_from` and `model.freeze` say, and record both on the
    run: tags `init_from`, `init_from_run_id`, `reinitialized`, `trainable_layers`; metrics
    `trainable_parameters` and `frozen_parameters`. Does nothing when neither is set."""
    tags: dict[str, str] = {}
    if model_cfg.init_from:
        source = load_source(recorder.store, str(model_cfg.init_from))
        reinitialized = copy_weights(network, source)
        tags |= {"init_from": source.reference, "reinitialized": ", ".join(reinitialized) or "none"}
        if source.run_id:
            tags["init_from_run_id"] = source.run_id
    if model_cfg.freeze is not None:
        spec = model_cfg.freeze
        trainable_layers = freeze(network, list(spec) if isinstance(spec, ListConfig) else spec)
        tags["trainable_layers"] = ", ".join(trainable_layers)[:5000]
    if not tags:
        return
    recorder.set_tags(tags)
    trainable = sum(p.numel() for p in network.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in network.parameters() if not p.requires_grad)
    recorder.log_metrics({"trainable_parameters": trainable, "frozen_parameters": frozen})
