"""The dynamic executor (control flow, TensorList/TensorArray, data-dependent shapes): see
executor.py."""
from .executor import DynamicExecutor, function_nodes, needs_dynamic

__all__ = ["DynamicExecutor", "function_nodes", "needs_dynamic"]
