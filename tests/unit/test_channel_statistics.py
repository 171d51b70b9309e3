"""The normalisation statistics of uint8 images, counted from histograms, agree with torch's float64 mean and std."""

import torch

from fruitlab.data.base import STATISTICS_CHUNK, channel_statistics


def test_histogram_statistics_equal_torchs_mean_and_std_of_the_images_in_unit_range() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (STATISTICS_CHUNK * 2 + 7, 3, 5, 4), dtype=torch.uint8, generator=generator)
    images[:, 1] //= 4  # channels with different spreads
    mean, std = channel_statistics(images)
    pixels = images.double().div(255).transpose(0, 1).flatten(1)
    torch.testing.assert_close(mean, pixels.mean(dim=1).float())
    torch.testing.assert_close(std, pixels.std(dim=1).float())
