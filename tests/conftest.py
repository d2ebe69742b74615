"""Shared test set-up: the adapters every GPU test runs on (both real adapters here)."""
import os

import pytest

# Vulkan (lavapipe) and OpenGL (llvmpipe) on a CPU-only machine; WGPU_TEST_ADAPTERS overrides
# (comma-separated substrings), e.g. on a machine with a real GPU.
ADAPTERS = [a for a in os.environ.get("WGPU_TEST_ADAPTERS", "vulkan,gl").split(",") if a]


@pytest.fixture(scope="session", params=ADAPTERS)
def device(request):
    from wgpu_runtime import get_device

    return get_device(request.param)
