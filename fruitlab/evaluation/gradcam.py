"""Grad-CAM (captum's LayerGradCam) on the last convolution: where a convolutional network looks."""

import torch
from captum.attr import LayerAttribution, LayerGradCam
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from torch import nn

from fruitlab.data.base import TensorImageDataModule
from fruitlab.evaluation.held_out import predict
from fruitlab.models import to_unit_float
from fruitlab.plotting import spread_sample
from fruitlab.tracking.runs import RunRecorder


def last_conv_layer(model: nn.Module) -> nn.Conv2d | None:
    """The network's last 2-D convolution (module order is forward order for fruitlab's models)."""
    convolutions = [module for module in model.modules() if isinstance(module, nn.Conv2d)]
    return convolutions[-1] if convolutions else None


def gradcam_maps(classifier: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Grad-CAM of `targets` for uint8 or [0, 1] images (N, C, H, W) on the last convolution, upsampled to
    the image size and scaled to [0, 1] per image: (N, H, W), on the CPU."""
    layer = last_conv_layer(classifier)
    if layer is None:
        raise ValueError("Grad-CAM needs a convolutional network; this one has no Conv2d layer")
    classifier.eval()
    device = next(classifier.parameters()).device
    inputs = to_unit_float(images.to(device))
    with torch.enable_grad():
        attributions = LayerGradCam(classifier, layer).attribute(
            inputs, target=targets.to(device), relu_attributions=True
        )
    maps = LayerAttribution.interpolate(attributions, tuple(images.shape[-2:]), "bilinear")
    maps = maps.detach().squeeze(1).cpu().clamp_min(0)
    peak = maps.flatten(1).amax(dim=1).clamp_min(1e-12)
    return maps / peak[:, None, None]


def gradcam_figure(images: torch.Tensor, maps: torch.Tensor, titles: list[str], is_correct: torch.Tensor) -> Figure:
    """Rows of [image, heat map] pairs: correct predictions on the left, wrong ones on the right."""
    sides = (("correct", is_correct.nonzero().flatten()), ("wrong", (~is_correct).nonzero().flatten()))
    rows = max(1, *(len(indices) for _, indices in sides))
    fig, axes = plt.subplots(rows, 4, figsize=(10, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for column, (verdict, indices) in zip((0, 2), sides, strict=True):
        color = "black" if verdict == "correct" else "red"
        if len(indices) == 0:
            axes[0, column].set_title(f"no {verdict} predictions", fontsize=9)
        for row, index in enumerate(indices.tolist()):
            image = images[index].permute(1, 2, 0).numpy().squeeze()
            cmap = "gray" if image.ndim == 2 else None
            axes[row, column].imshow(image, cmap=cmap)
            axes[row, column].set_title(titles[index], fontsize=8, color=color)
            axes[row, column + 1].imshow(image, cmap=cmap)
            axes[row, column + 1].imshow(maps[index].numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1)
            axes[row, column + 1].set_title(f"Grad-CAM ({verdict})", fontsize=8, color=color)
    fig.tight_layout()
    return fig


def log_gradcam(
    recorder: RunRecorder,
    classifier: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    probabilities: torch.Tensor,
    classes: list[str],
    count: int = 8,
) -> bool:
    """Log plots/gradcam.png: `count` test images spread over the test set, half of them mistakes when
    there are enough, with the Grad-CAM of the predicted class. Returns False, logging nothing, for a
    network without convolutions."""
    if last_conv_layer(classifier) is None:
        return False
    predictions = probabilities.argmax(dim=1)
    hits = (predictions == labels).nonzero().flatten()
    misses = (predictions != labels).nonzero().flatten()
    wrong = misses[spread_sample(min(count // 2, len(misses)), len(misses))]
    correct = hits[spread_sample(count - len(wrong), len(hits))]
    chosen = torch.cat([correct, wrong])
    maps = gradcam_maps(classifier, images[chosen], predictions[chosen])
    titles = [f"true: {classes[labels[i]]}\npred: {classes[predictions[i]]}" for i in chosen.tolist()]
    figure = gradcam_figure(images[chosen], maps, titles, predictions[chosen] == labels[chosen])
    recorder.log_figure(figure, "plots/gradcam.png")
    return True


def confusion_gradcam(
    classifier: nn.Module, datamodule: TensorImageDataModule, pairs: list[tuple[int, int]], per_pair: int = 2
) -> Figure | None:
    """Grad-CAM of the predicted class for up to `per_pair` test images of each confused (true label, predicted
    label) pair, for a trained classifier and its set-up data; None for a network without convolutions or when
    no test image is such a confusion."""
    if last_conv_layer(classifier) is None:
        return None
    probabilities, labels = predict(classifier, datamodule.test_dataloader())
    predictions = probabilities.argmax(dim=1)
    chosen: list[int] = []
    for true, predicted in pairs:
        chosen += ((labels == true) & (predictions == predicted)).nonzero().flatten()[:per_pair].tolist()
    if not chosen:
        return None
    index = torch.tensor(chosen)
    images = datamodule.test.images[index]
    maps = gradcam_maps(classifier, images, predictions[index])
    classes = datamodule.classes
    titles = [f"true: {classes[labels[i]]}\npred: {classes[predictions[i]]}" for i in chosen]
    return gradcam_figure(images, maps, titles, torch.zeros(len(chosen), dtype=torch.bool))
