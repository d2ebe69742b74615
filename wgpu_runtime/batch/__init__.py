"""Batch inference: a model over a folder of .npy / .npz files or a Parquet / NumPy data set, in
this process or on a Ray cluster (``pip install wgpu-runtime[ray]``).

``python -m wgpu_runtime batch MODEL INPUTS OUTPUT [--ray auto|ADDRESS] [--workers N]
[--batch-size B] [--adapter A] [--fail-fast] [--json]``

Modules, one job each: ``predictor`` (the model on one adapter; the classes Ray Data's
``map_batches`` runs in its actors), ``work`` (inputs, outputs, resume), ``run`` (one process or
Ray Data), ``cluster`` (joining or starting Ray; the only module importing it), ``cli`` (the
command: progress bar and summary). Ray is imported only when ``--ray`` is given.
"""
from __future__ import annotations

from ..cli_args import positive_int


def add_subcommand(sub):
    p = sub.add_parser("batch", help="run a model over many inputs (files or a data set), here or on a Ray cluster",
                       description="Run a model over a folder of .npy/.npz files (one output OUTPUT/<name>.npz "
                                   "per input, resumable) or a Parquet / .npy data set (rows in order to "
                                   "OUTPUT/part-00000.parquet), in this process or on a Ray cluster.")
    p.add_argument("model", help="model.json or its folder (graph or layers model)")
    p.add_argument("inputs", help="a folder of .npy/.npz files (.npy: the model's one input; .npz: arrays by "
                                  "input name), or a data set: a .parquet file or folder, or a .npy file of rows")
    p.add_argument("output", help="the output folder (created); outputs already complete there are skipped")
    p.add_argument("--ray", metavar="auto|ADDRESS",
                   help="run on Ray: 'auto' (the cluster Ray finds, else a local one) or a cluster address; "
                        "needs pip install wgpu-runtime[ray]")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="with --ray: model actors (default: the cluster's GPUs, else one per node)")
    p.add_argument("--batch-size", type=positive_int, default=8, metavar="B",
                   help="files per task (files), rows per inference (data set); default 8")
    p.add_argument("--adapter", help="the adapter each worker opens (vulkan, gl, ...); default: wgpu's choice, "
                                     "or the GPU Ray gave the worker")
    p.add_argument("--fail-fast", action="store_true",
                   help="stop at the first input that cannot be read or run (default: report it, run the rest)")
    p.add_argument("--json", action="store_true", help="the summary as one JSON object on stdout")

    def handler(args) -> int:
        from .cli import main

        return main(args)
    return "batch", handler
