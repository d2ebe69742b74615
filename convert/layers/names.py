"""Keras 3 weight paths -> the names TF.js gives those weights.

TF.js (like tf_keras) names a weight ``<layer>/<weight>``, where ``<layer>`` is the layer that
owns it however deeply the model nests it (``sub_d1/kernel`` for a Dense inside a nested model),
``<bidirectional>/<forward_x|backward_x>/<weight>`` inside a Bidirectional; a name with one more
level (``lstm/lstm_cell/kernel``, tf_keras's RNN form) also matches. Keras 3 records variable
paths that depend on how the model was built or loaded (``rnn/emb/embeddings`` with the model
name, ``dense_1/kernel`` for a TimeDistributed's inner layer without the wrapper's name), and
calls a DepthwiseConv's kernel ``kernel`` (tf_keras and TF.js: ``depthwise_kernel``). So the
owner is found from the model config: the top-level layer is the HDF5 group the weight is in
(or, for names without a group, the first path token naming a top-level layer); inside a
nested model, the first path token naming one of its layers.
"""
from __future__ import annotations

from ..errors import ConversionError
from .topology import MODEL_CLASSES

_RENAMED = {("DepthwiseConv1D", "kernel"): "depthwise_kernel", ("DepthwiseConv2D", "kernel"): "depthwise_kernel"}


class Keras3WeightNames:
    def __init__(self, model_config: dict):
        self.root = model_config

    def name(self, path: str, group: str | None = None) -> str:
        tokens = path.split("/")
        if len(tokens) >= 2 and tokens[-2] == "vars" and tokens[-1].isdigit():
            raise ConversionError(f"weight {path!r} is named by its .keras storage slot (the official converter's "
                                  "names for .keras inputs), not by the variable; convert the .keras file instead")
        owner = self._owner(self.root, tokens[:-1], group)
        if owner is None:
            raise ConversionError(f"cannot tell which layer the Keras 3 weight {path!r} belongs to")
        cls, cfg = owner.get("class_name"), owner.get("config") or {}
        lname, weight = cfg.get("name") or owner.get("name"), tokens[-1]
        if cls == "Bidirectional":
            direction = next((t for t in tokens[:-1] if t.startswith(("forward_", "backward_"))), None)
            if direction is None:
                raise ConversionError(f"Keras 3 weight {path!r} of Bidirectional layer {lname!r}: "
                                      "no forward_/backward_ part in its path")
            return f"{lname}/{direction}/{weight}"
        return f"{lname}/{_RENAMED.get((cls, weight), weight)}"

    def _owner(self, model: dict, tokens: list[str], group: str | None):
        layers = {(l.get("config") or {}).get("name") or l.get("name"): l
                  for l in (model.get("config") or {}).get("layers", []) if isinstance(l, dict)}
        if group is not None and group in layers:
            found, rest = layers[group], tokens[tokens.index(group) + 1:] if group in tokens else tokens
        else:
            i = next((i for i, t in enumerate(tokens) if t in layers), None)
            if i is None:
                return None
            found, rest = layers[tokens[i]], tokens[i + 1:]
        if found.get("class_name") in MODEL_CLASSES:
            return self._owner(found, rest, None)
        return found
