"""Graph models: the node graph, the static planner and executor, and the dynamic executor."""
