"""A structure-aware fuzzer of the runtime: seed models, mutations, isolated case runs, verdicts.

``tools/fuzz.py`` is its command line; ``tests/test_fuzz.py`` runs a seeded slice in the suite.
"""
