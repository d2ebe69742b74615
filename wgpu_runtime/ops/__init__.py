"""The op registry and its op families (importing a family registers its ops)."""
from . import (conv, elementwise, image, matmul, normalization, pool, reduce,  # noqa: F401 (registers)
               transform)
# after the families: these reuse their lowerings and helpers
from . import control, dynamic, hash_table, misc, strings, tensor_array  # noqa: F401,E402 (registers)
from . import tfdf  # noqa: F401,E402 (registers; TF Decision Forests, host)
from .registry import REGISTRY, Case, OpDef, Tensor, get, missing_ops, register, supported

__all__ = ["REGISTRY", "Case", "OpDef", "Tensor", "get", "missing_ops", "register", "supported"]
