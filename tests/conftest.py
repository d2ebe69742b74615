"""Shared test set-up: the adapters every GPU test runs on (both real adapters here)."""
import importlib.util
import os

import pytest

# tensorflow_decision_forests (pulled in by the official converter) thinks captured stdout is a
# notebook and imports IPython unless told not to.
os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Many tests compare with TensorFlow, in this process, after the session's devices are open. Once
# an OpenGL adapter has been enumerated, a plain `import tensorflow` crashes at TF's first graph
# optimisation (convert/tensorflow_loader.py): import it first, the way the converter does.
if importlib.util.find_spec("tensorflow") is not None:
    from wgpu_runtime.convert import import_tensorflow

    import_tensorflow()

# Vulkan (lavapipe) and OpenGL (llvmpipe) on a CPU-only machine; WGPU_TEST_ADAPTERS overrides
# (comma-separated substrings), e.g. on a machine with a real GPU.
ADAPTERS = [a for a in os.environ.get("WGPU_TEST_ADAPTERS", "vulkan,gl").split(",") if a]


@pytest.fixture(scope="session", params=ADAPTERS)
def device(request):
    from wgpu_runtime import get_device

    return get_device(request.param)
