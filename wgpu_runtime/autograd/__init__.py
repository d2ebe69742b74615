"""Reverse-mode autograd over the op registry's numpy references and gradient rules."""
from .tape import GradientError, Node, Var, apply, backward, value_of, vjp

__all__ = ["GradientError", "Node", "Var", "apply", "backward", "value_of", "vjp"]
