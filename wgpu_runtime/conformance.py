"""`python -m wgpu_runtime conformance ...` (being written)."""


def add_subcommand(sub):
    sub.add_parser("conformance", help="run the op registry's cases and models on every adapter")

    def run(args):
        raise NotImplementedError("conformance is not implemented yet")
    return "conformance", run
