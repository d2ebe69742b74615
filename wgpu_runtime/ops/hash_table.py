"""Hash tables (host): HashTable(V2) creates a table (a resource handle), LookupTableImport(V2)
and InitializeTable(V2) fill it, LookupTableFind(V2) looks keys up (the default value for missing
ones), LookupTableSize(V2) counts entries.

In a converted SavedModel the tables are made and filled by the model's ``modelInitializer``
graph, run once when the model is first executed; the inference graph receives their handles as
resource inputs matched by ``resourceId`` (wgpu_runtime/graph/dynamic/executor.py). Tables live
in the runtime's resources (by ``shared_name`` when set, so a table made twice is one table).
"""
from __future__ import annotations

import numpy as np

from .common import F, I, S
from .runtime import runtime_op, shared_resource, typed_obj


class HashTable:
    def __init__(self, key_dtype, value_dtype):
        self.key_dtype, self.value_dtype = key_dtype, value_dtype
        self.table: dict = {}

    def insert(self, keys, values) -> None:
        keys, values = np.asarray(keys, dtype=object).reshape(-1), np.asarray(values)
        values = values.reshape((keys.size,) + values.shape[np.ndim(keys) if np.ndim(keys) else 1:]) \
            if values.size != keys.size else values.reshape(-1)
        for k, v in zip(keys, values):
            self.table[_key(k)] = v

    def find(self, keys, default):
        keys = np.asarray(keys, dtype=object)
        default = np.asarray(default)
        fill = default[()] if default.ndim == 0 else default   # a scalar, not a 0-d array (an object array
        flat = [self.table.get(_key(k), fill) for k in keys.reshape(-1)]    # would keep the array as an element)
        if not flat:
            return np.zeros(keys.shape, default.dtype)
        return np.asarray(flat).reshape(keys.shape + np.shape(flat[0]))


def _key(k):
    if isinstance(k, bytes):
        try:
            return k.decode("utf-8")
        except UnicodeDecodeError:
            return k
    if isinstance(k, (np.integer, np.floating)):
        return k.item()
    return k


def _table(rt, t) -> HashTable:
    return typed_obj(rt, t, HashTable, "a hash table handle")


def _create(rt, attrs, ins):
    table = shared_resource(rt, "table", attrs, lambda: HashTable(attrs.get("key_dtype"), attrs.get("value_dtype")))
    return [rt.opaque(table, "resource")]


def _import(rt, attrs, ins):
    _table(rt, ins[0]).insert(rt.host(ins[1]), rt.host(ins[2]))
    return []


def _find(rt, attrs, ins):
    table = _table(rt, ins[0])
    return [rt.value(table.find(rt.host(ins[1]), rt.host(ins[2])))]


def _size(rt, attrs, ins):
    return [rt.value(np.int32(len(_table(rt, ins[0]).table)))]


runtime_op("HashTable", "HashTableV2", impl=_create, shape=lambda attrs, ins: [((), "resource")],
           dtypes=(S, F, I))
runtime_op("LookupTableImport", "LookupTableImportV2", "InitializeTable", "InitializeTableV2", impl=_import, shape=lambda attrs, ins: [], dtypes=(S, F, I))
runtime_op("LookupTableFind", "LookupTableFindV2", impl=_find,
           shape=lambda attrs, ins: [(ins[1].shape, attrs.get("Tout") or ins[2].dtype)], dtypes=(S, F, I))
runtime_op("LookupTableSize", "LookupTableSizeV2", impl=_size, shape=lambda attrs, ins: [((), I)],
           dtypes=(S, F, I))
