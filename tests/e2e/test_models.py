import pytest
import torch

from fruitlab.errors import ConfigError
from fruitlab.models import count_parameters, get_model, list_models, register_model

# The seed paper's counts (Keras-style: batch-norm running mean and variance included).
PAPER_COUNTS = {
    "vgg1": 1_060_138,
    "vgg2": 591_274,
    "vgg3": 550_570,
    "vgg3_dropout": 550_570,
    "vgg3_bn": 552_298,
}


@pytest.mark.parametrize(("name", "expected"), PAPER_COUNTS.items())
def test_vgg_parameter_counts_match_the_paper(name: str, expected: int) -> None:
    assert count_parameters(get_model(name, num_classes=10, input_shape=(3, 32, 32))) == expected


def test_vgg3_bn_trainable_parameters_match_keras() -> None:
    model = get_model("vgg3_bn", num_classes=10, input_shape=(3, 32, 32))
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 551_146


@pytest.mark.parametrize("name", ["vgg1", "vgg2", "vgg3", "vgg3_dropout", "vgg3_bn", "lenet", "mobilenet_v2"])
def test_every_image_model_maps_a_batch_to_class_scores(name: str) -> None:
    model = get_model(name, num_classes=7, input_shape=(3, 32, 32)).eval()
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 7)


def test_ffnn_input_size_comes_from_the_data() -> None:
    model = get_model("ffnn", num_classes=10, input_shape=(170,))
    assert model(torch.rand(4, 170)).shape == (4, 10)
    assert count_parameters(model) == 170 * 32 + 32 + 32 * 10 + 10


def test_unknown_model_names_the_value_and_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown model 'resnet9000'.*vgg3_bn"):
        get_model("resnet9000", num_classes=10, input_shape=(3, 32, 32))


def test_a_name_registers_once() -> None:
    assert "vgg1" in list_models()
    with pytest.raises(ValueError, match="already registered"):
        register_model("vgg1")(lambda **_: None)
