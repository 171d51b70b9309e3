"""The seed paper's PCA baseline input: grayscale (0.3R + 0.59G + 0.11B), per-pixel standardisation with
training-split statistics, then projection on the first principal components (scikit-learn PCA fitted on the
training split only).

The whole chain is linear, so it is a torch module (`GrayscalePCA`) that the model owns: the logged model
takes images like every other model. Principal components are nested, so one fit for the largest count a sweep
needs serves every smaller count by slicing; the fit is cached on disk like the decoded images.
"""

import hashlib
from dataclasses import dataclass

import torch
from sklearn.decomposition import PCA
from torch import nn

from fruitlab.data.base import ImageTensors
from fruitlab.data.imagefolder import ImageFolderDataModule
from fruitlab.data.loaded import load_cached
from fruitlab.errors import ConfigError

GRAY_WEIGHTS = (0.3, 0.59, 0.11)


def grayscale(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) images, uint8 or [0, 1] floats -> (N, H*W) gray levels in [0, 1]."""
    x = images.float() / 255 if images.dtype == torch.uint8 else images
    weights = torch.tensor(GRAY_WEIGHTS, dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
    return (x * weights).sum(dim=1).flatten(1)


@dataclass
class PCAFit:
    pixel_mean: torch.Tensor  # (D,) of the gray training pixels
    pixel_std: torch.Tensor  # (D,)
    components: torch.Tensor  # (K, D), rows sorted by explained variance
    explained_variance_ratio: torch.Tensor  # (K,)

    def standardize(self, gray: torch.Tensor) -> torch.Tensor:
        return (gray - self.pixel_mean) / self.pixel_std

    def project(self, gray: torch.Tensor, k: int) -> torch.Tensor:
        """(N, D) gray pixels -> (N, k) component scores. Standardised pixels have zero mean, so PCA's own
        centring is the identity here."""
        return self.standardize(gray) @ self.components[:k].T

    def reconstruct(self, scores: torch.Tensor) -> torch.Tensor:
        """(N, k) scores -> (N, D) gray pixels, from the first k components."""
        k = scores.shape[1]
        return scores @ self.components[:k] * self.pixel_std + self.pixel_mean


def fit_pca(images: torch.Tensor, n_components: int, seed: int = 0) -> PCAFit:
    gray = grayscale(images)
    mean, std = gray.mean(dim=0), gray.std(dim=0).clamp_min(1e-6)
    limit = min(n_components, *gray.shape)
    pca = PCA(n_components=limit, svd_solver="randomized", random_state=seed).fit(((gray - mean) / std).numpy())
    return PCAFit(
        mean, std, torch.from_numpy(pca.components_).float(), torch.from_numpy(pca.explained_variance_ratio_).float()
    )


class GrayscalePCA(nn.Module):
    """[0, 1] images -> scores on the first `n_components` principal components."""

    def __init__(self, fit: PCAFit, n_components: int) -> None:
        super().__init__()
        self.register_buffer("weights", torch.tensor(GRAY_WEIGHTS).reshape(1, 3, 1, 1))
        self.register_buffer("pixel_mean", fit.pixel_mean.clone())
        self.register_buffer("pixel_std", fit.pixel_std.clone())
        self.register_buffer("components", fit.components[:n_components].clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gray = (x * self.weights).sum(dim=1).flatten(1)
        return ((gray - self.pixel_mean) / self.pixel_std) @ self.components.T


class PCADataModule(ImageFolderDataModule):
    """ImageFolder data whose model input is the first `n_components` principal components. `fit_components`
    (at least `n_components`) is how many are fitted and cached: set it to a sweep's largest count so
    every trial shares one fit."""

    def __init__(self, n_components: int = 50, fit_components: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_components = n_components
        self.fit_components = max(n_components, fit_components or n_components)
        self._fit: PCAFit | None = None

    @property
    def pca(self) -> PCAFit:
        """The PCA fitted on the training split, loaded from the cache when it was fitted before."""
        if self._fit is None:
            assert self.train is not None, "call setup() first"
            self._fit = PCAFit(**load_cached(self._cache_path(self.train), self._fit_to_dict))
            if len(self._fit.components) < self.n_components:
                raise ConfigError(
                    f"data.n_components={self.n_components} exceeds the {len(self._fit.components)} components "
                    "the training split supports"
                )
        return self._fit

    def _cache_path(self, train: ImageTensors):
        digest = hashlib.sha256(train.images.numpy().tobytes()).hexdigest()[:20]
        return self.cache_dir / f"pca-{digest}-{self.fit_components}.pt"

    def _fit_to_dict(self) -> dict:
        return vars(fit_pca(self.train.images, self.fit_components, self.seed))

    def input_transform(self) -> nn.Module:
        return GrayscalePCA(self.pca, self.n_components)

    @property
    def model_input_shape(self) -> tuple[int, ...]:
        return (self.n_components,)

    def data_params(self) -> dict[str, object]:
        return {**super().data_params(), "data.pca_fitted_components": len(self.pca.components)}

    def summary_metrics(self) -> dict[str, float]:
        return {"pca_explained_variance": float(self.pca.explained_variance_ratio[: self.n_components].sum())}
