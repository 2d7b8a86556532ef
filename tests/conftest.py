import pytest
import torch


@pytest.fixture
def gen():
    """A fresh, seeded CPU generator for every test."""
    return torch.Generator().manual_seed(1234)


def assert_mc_close(estimate, expected, sd, n, z=5.0):
    """Monte-Carlo check: |estimate − expected| ≤ z · sd / √n."""
    bound = z * sd / n ** 0.5
    assert abs(float(estimate) - float(expected)) <= bound, (float(estimate), float(expected), bound)
