"""`python -m wgpu_runtime convert ...` (being written)."""


def add_subcommand(sub):
    p = sub.add_parser("convert", help="convert a Keras/TF model to the TF.js format (needs TensorFlow)")

    def run(args):
        raise NotImplementedError("convert is not implemented yet")
    return "convert", run
