"""TensorFlow's own graph optimizer (Grappler), run on a frozen GraphDef with a given pass list.

As the official converter: the fetch nodes are told to Grappler through a ``train_op``
collection and a signature in the MetaGraphDef, and the cluster is one virtual GPU (the remap
pass then fuses Conv2D / MatMul that carry a CPU device with their bias and activation).
"""
from __future__ import annotations

FIRST_PASSES = ["pruning", "constfold", "arithmetic", "dependency"] * 2
FUSION_PASSES = ["remap", "constfold", "arithmetic", "dependency"]


def run(graph_def, output_nodes, signature_def, passes, debug_stripper=False, aggressive_inlining=False):
    """``graph_def`` optimized by ``passes`` (Grappler optimizer names); ``output_nodes``: the
    names of the nodes to keep (the graph's fetches)."""
    from tensorflow.core.protobuf import config_pb2, device_properties_pb2, meta_graph_pb2
    from tensorflow.python.grappler import cluster as gcluster
    from tensorflow.python.grappler import tf_optimizer

    meta_graph = meta_graph_pb2.MetaGraphDef()
    meta_graph.graph_def.CopyFrom(graph_def)
    meta_graph.collection_def["train_op"].node_list.value.extend(output_nodes)
    meta_graph.signature_def["not_used_key"].CopyFrom(signature_def)
    config = config_pb2.ConfigProto()
    rewrite = config.graph_options.rewrite_options
    rewrite.optimizers[:] = (["debug_stripper"] if debug_stripper else []) + list(passes)
    if aggressive_inlining:
        from tensorflow.core.protobuf import rewriter_config_pb2

        rewrite.min_graph_nodes = -1
        rewrite.function_optimization = rewriter_config_pb2.RewriterConfig.AGGRESSIVE
    device = device_properties_pb2.NamedDevice(name="/GPU:0")
    device.properties.type = "GPU"
    device.properties.environment["architecture"] = "4"
    return tf_optimizer.OptimizeGraph(config, meta_graph, cluster=gcluster.Cluster(devices=[device]))
