"""The op registry and its op families: one module per family, and an op's family is the module
that registers it (importing a family registers its ops)."""
# strided_copy: the copy engine many families use (registers nothing)
from . import strided_copy  # noqa: F401
from . import elementwise, elementwise_chain, reduce, transform  # noqa: F401 (registers)
# after the families whose lowerings and helpers they reuse
from . import conv, creation, graph_ops, image, matmul, normalization, pool, spectral  # noqa: F401,E402 (registers)
from . import control, dynamic, hash_table, strings, tensor_array  # noqa: F401,E402 (registers)
from . import tfdf  # noqa: F401,E402 (registers; TF Decision Forests, host)
from .registry import REGISTRY, Case, OpDef, Tensor, get, missing_ops, register, supported

__all__ = ["REGISTRY", "Case", "OpDef", "Tensor", "get", "missing_ops", "register", "supported"]
