"""The op registry and its op families (importing a family registers its ops)."""
from . import (conv, elementwise, image, matmul, normalization, pool, reduce,  # noqa: F401 (registers)
               transform)
from .registry import REGISTRY, Case, OpDef, Tensor, get, missing_ops, register, supported

__all__ = ["REGISTRY", "Case", "OpDef", "Tensor", "get", "missing_ops", "register", "supported"]
