from pathlib import Path

import pytest
import torch

from fruitlab.data.pca import PCADataModule, grayscale


def test_grayscale_uses_the_paper_weights() -> None:
    pixel = torch.tensor([200, 100, 50], dtype=torch.uint8).reshape(1, 3, 1, 1)
    assert grayscale(pixel).item() == pytest.approx((0.3 * 200 + 0.59 * 100 + 0.11 * 50) / 255)


def test_pca_input_has_n_components_and_one_fit_serves_smaller_counts(real_data: Path, tmp_path: Path) -> None:
    def module(n: int) -> PCADataModule:
        dm = PCADataModule(root=real_data, cache_dir=tmp_path, n_components=n, fit_components=210)
        dm.setup()
        return dm

    big, small = module(210), module(30)
    images = big.test.images[:8].float() / 255
    assert big.input_transform()(images).shape == (8, 210)
    assert small.input_transform()(images).shape == (8, 30)
    assert small.model_input_shape == (30,)
    assert len(list(tmp_path.glob("pca-*.pt"))) == 1  # fitted once, shared by both counts
    assert torch.allclose(big.input_transform()(images)[:, :30], small.input_transform()(images), atol=1e-4)
    ratios = big.pca.explained_variance_ratio
    assert torch.all(ratios[:-1] >= ratios[1:])  # sorted, nested
    explained = [dm.summary_metrics()["pca_explained_variance"] for dm in (small, big)]
    assert 0.5 < explained[0] < explained[1] <= 1


def test_standardised_training_pixels_have_zero_mean_unit_variance(real_data: Path, tmp_path: Path) -> None:
    dm = PCADataModule(root=real_data, cache_dir=tmp_path, n_components=10)
    dm.setup()
    z = dm.pca.standardize(grayscale(dm.train.images))
    assert z.mean(dim=0).abs().max() < 1e-2
    assert (z.std(dim=0) - 1).abs().max() < 1e-2
