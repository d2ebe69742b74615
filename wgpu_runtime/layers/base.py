"""Layer and Weight: the pieces a layers model is made of, and the class-name registry.

A :class:`Layer` is built from its Keras config. On its first call it learns its input shapes
and declares its weights (``build``) in Keras order; a loaded model then binds the weights it
read from the shards. ``call(ctx, *inputs)`` expresses the layer with registry ops through a
:class:`~wgpu_runtime.layers.ctx.Ctx`, once for both the GPU graph and the CPU autograd.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelFormatError, WgpuRuntimeError

MAX_WEIGHT_BYTES = 2 << 30   # one float32 weight: the largest buffer lavapipe (and most GPUs) allocate

# class name -> Layer subclass (built-ins register on import; users through register_layer)
LAYERS: dict[str, type] = {}
ALIASES = {"Model": "Functional", "Convolution1D": "Conv1D", "Convolution2D": "Conv2D",
           "Conv2DTranspose": "Conv2DTranspose", "Deconvolution2D": "Conv2DTranspose",
           "SeparableConvolution2D": "SeparableConv2D", "MaxPool1D": "MaxPooling1D",
           "MaxPool2D": "MaxPooling2D", "AvgPool1D": "AveragePooling1D", "AvgPool2D": "AveragePooling2D",
           "AveragePooling1D": "AveragePooling1D", "GlobalAvgPool1D": "GlobalAveragePooling1D",
           "GlobalAvgPool2D": "GlobalAveragePooling2D", "GlobalMaxPool1D": "GlobalMaxPooling1D",
           "GlobalMaxPool2D": "GlobalMaxPooling2D"}


def layer_class(name: str):
    return LAYERS.get(ALIASES.get(name, name))


def register(*names: str):
    """Class decorator: the Keras class names this Layer subclass reads."""
    def deco(cls):
        for n in names:
            LAYERS[n] = cls
        cls.class_names = names
        return cls
    return deco


def register_layer(class_name: str, cls=None):
    """Let models use a custom Keras layer class. ``cls`` subclasses :class:`Layer` (``build`` to
    declare weights with ``add_weight`` in the order Keras saves them, ``call(ctx, x)`` built
    from ``ctx`` ops). Usable as a decorator: ``@register_layer("PixelShuffle")``."""
    if cls is None:
        return lambda c: register_layer(class_name, c)
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register_layer({class_name!r}, ...) needs a Layer subclass, got {cls!r}")
    LAYERS[class_name] = cls
    return cls


@dataclass(eq=False)
class Weight:
    """One weight: ``name`` within its layer (``kernel``), ``key`` the saved name
    (``dense/kernel``), ``value`` a float32 array updated in place by training."""

    name: str
    value: np.ndarray
    trainable: bool = True
    key: str = ""
    regularizer: object = None
    constraint: object = None

    @property
    def shape(self):
        return self.value.shape

    def numpy(self) -> np.ndarray:
        return self.value.copy()

    def assign(self, value) -> None:
        value = np.asarray(value, dtype=self.value.dtype)
        if value.shape != self.value.shape:
            raise ValueError(f"weight {self.key or self.name} has shape {self.value.shape}, got {value.shape}")
        self.value[...] = value

    def __repr__(self):
        return f"<Weight {self.key or self.name} shape={self.value.shape} trainable={self.trainable}>"


def shape_of(config: dict, *keys):
    """The first present config value among ``keys`` as a tuple (None entries kept)."""
    for k in keys:
        v = config.get(k)
        if v is not None:
            return tuple(v)
    return None


def pair(v, n: int = 2) -> tuple[int, ...]:
    if isinstance(v, (list, tuple)):
        if len(v) == 1 and n > 1:
            return tuple(integer(v[0]) for _ in range(n))
        return tuple(integer(e) for e in v)
    return tuple(integer(v) for _ in range(n))


def integer(value, what: str = "a config value", minimum: int | None = None) -> int:
    """An integral config number (``8`` or ``8.0``, not ``8.5``, ``"8"`` or ``true``) as an int."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer() \
            or (minimum is not None and value < minimum):
        limit = f" >= {minimum}" if minimum is not None else ""
        raise ModelFormatError(f"{what} must be an integer{limit}, got {value!r}")
    return int(value)


class Layer:
    """Base class of every layer. Subclasses implement ``build(input_shapes)`` (declare weights)
    and ``call(ctx, *inputs, **kwargs)``. ``input_shapes``: one shape tuple, or a list for layers
    called on several tensors (shapes include the batch dim)."""

    class_names: tuple[str, ...] = ()

    def __init__(self, config: dict | None = None, flavor: str = "tf_keras", class_name: str | None = None):
        self.config = dict(config or {})
        self.flavor = flavor
        self.class_name = class_name or (self.class_names[0] if self.class_names else type(self).__name__)
        self.name = self.config.get("name") or self.class_name.lower()
        self._trainable = bool(self.config.get("trainable", True) if self.config.get("trainable") is not None else True)
        self._weights: list[Weight] = []
        self.sublayers: list[Layer] = []
        self.built = False
        self.output_shapes: list = []        # per call: the output shape(s) seen while tracing

    # -- keras-like attributes ---------------------------------------------------------------
    @property
    def trainable(self) -> bool:
        """Whether training updates this layer's weights; setting it sets every sublayer's too."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for s in self.sublayers:
            s.trainable = value

    @property
    def weights(self) -> list[Weight]:
        """Every weight, in the order Keras lists and saves them (declaration order; freezing a
        layer does not reorder them)."""
        return list(self._weights) + [w for s in self.sublayers for w in s.weights]

    @property
    def trainable_weights(self) -> list[Weight]:
        """The weights training updates (none when the layer is frozen)."""
        if not self.trainable:
            return []
        return [w for w in self._weights if w.trainable] + [w for s in self.sublayers for w in s.trainable_weights]

    @property
    def non_trainable_weights(self) -> list[Weight]:
        """The other weights (moving statistics, frozen layers' weights), in ``weights`` order."""
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights' values, in ``weights`` order."""
        return [w.numpy() for w in self.weights]

    def set_weights(self, arrays) -> None:
        """Assign arrays (as ``get_weights`` returns them) to the weights; shapes must match."""
        ws = self.weights
        if len(arrays) != len(ws):
            raise ValueError(f"layer {self.name!r} has {len(ws)} weights, got {len(arrays)} arrays")
        for w, a in zip(ws, arrays):
            w.assign(a)

    def count_params(self) -> int:
        """The number of scalars in the layer's weights."""
        return int(sum(w.value.size for w in self.weights))

    def add_weight(self, name: str, shape, trainable: bool = True, init: str | float = 0.0,
                   regularizer=None, constraint=None) -> Weight:
        """Declare a float32 weight (call from ``build``, in the order Keras saves them): ``init``
        is "zeros", "ones" or a constant; a loaded model overwrites it with the saved value."""
        shape = tuple(integer(d, f"layer {self.name!r}: weight {name!r} size", 0) for d in shape)
        nbytes = 4 * int(np.prod(shape, dtype=object))
        if nbytes > MAX_WEIGHT_BYTES:
            raise ModelFormatError(f"layer {self.name!r} ({self.class_name}): weight {name!r} of shape {list(shape)} "
                                   f"would take {nbytes} bytes, over the limit of {MAX_WEIGHT_BYTES}")
        value = np.full(shape, 1.0 if init == "ones" else (0.0 if init == "zeros" else init), np.float32)
        w = Weight(name, value, trainable, key=f"{self.name}/{name}", regularizer=regularizer, constraint=constraint)
        self._weights.append(w)
        return w

    # -- calling -----------------------------------------------------------------------------
    def build(self, input_shapes) -> None:
        """Declare weights for these input shapes (default: none)."""

    def call(self, ctx, *inputs, **kwargs):
        """The layer's computation on ``ctx`` tensors, with ``ctx`` ops (``ctx.op("Relu", x)``,
        ``ctx.add``, ...): the same code builds the GPU graph and runs the CPU autograd."""
        raise NotImplementedError(f"{type(self).__name__}.call")

    def __call__(self, ctx, *inputs, **kwargs):
        """Build on the first call (from the inputs' shapes), then ``call``."""
        try:
            if not self.built:
                self.build(_shapes(ctx, inputs[0] if len(inputs) == 1 else list(inputs)))
                self.built = True
            return self.call(ctx, *inputs, **kwargs)
        except WgpuRuntimeError:
            raise
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as e:
            if not type(self).__module__.startswith(__name__.rsplit(".", 1)[0]):
                raise                     # a user's layer: its own error
            raise ModelFormatError(f"layer {self.name!r} ({self.class_name}): invalid config or inputs "
                                   f"({type(e).__name__}: {e})"[:400]) from None

    def cfg(self, key, default=None):
        """Config value, treating null (TF.js writes nulls for defaults) as absent."""
        v = self.config.get(key)
        return default if v is None else v

    def __repr__(self):
        return f"<{self.class_name} {self.name!r}>"


def _shapes(ctx, inputs):
    if isinstance(inputs, (list, tuple)):
        return [_shapes(ctx, t) for t in inputs]
    if inputs is None:
        return None
    return ctx.shape(inputs)


def unknown_layer(class_name: str, layer_name: str) -> ModelFormatError:
    known = ", ".join(sorted(LAYERS))
    return ModelFormatError(f"unknown layer class {class_name!r} (layer {layer_name!r}). Known: {known}. "
                            f"A custom layer can be added with wgpu_runtime.register_layer({class_name!r}, cls)")
