"""Resolving flags whose value is optional against the two positional paths.

The official converter declares ``--quantize_uint8`` (and float16/uint16) with ``nargs='?'``,
so ``--quantize_uint8 saved_model/ web_model/`` swallows ``saved_model/`` as a pattern and then
fails for a missing path. Here every token that could be either a flag's value or a positional
is decided before argparse sees it: the command needs exactly two positionals (input, output);
tokens that are positionals for sure are counted first, and the remaining ones are taken from
the ambiguous tokens, preferring (1) an input path that exists, (2) the two paths next to each
other, (3) the last tokens. The result is rewritten as ``--flag=value`` / bare ``--flag`` followed
by ``--`` and the positionals, which argparse cannot misread. Paths with spaces are single
tokens from the shell and stay so (the official entry point re-splits its argv on spaces).
"""
from __future__ import annotations

import itertools
import os

BOOL_WORDS = {"true": True, "1": True, "yes": True, "on": True,
              "false": False, "0": False, "no": False, "off": False}
N_POSITIONALS = 2


def resolve(tokens, value_flags, pattern_flags, bool_flags) -> list[str]:
    """``tokens``: the subcommand's argv. ``value_flags``: options that always take a value;
    ``pattern_flags``: options with an optional value (any token not starting with '-');
    ``bool_flags``: options with an optional true/false value. Returns the rewritten argv."""
    options, free = [], []          # free: [token, flag index in options or None, eligible]
    it = iter(enumerate(tokens))
    for i, tok in it:
        if tok == "--":
            free += [[t, None, False] for t in tokens[i + 1:]]
            break
        if tok.startswith("-") and len(tok) > 1 and not _is_number(tok):
            name = tok.split("=", 1)[0]
            options.append(tok)
            if "=" in tok:
                continue
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if name in value_flags and nxt is not None:
                options.append(nxt)
                next(it)
            elif (name in pattern_flags or name in bool_flags) and nxt is not None and nxt != "--" \
                    and not (nxt.startswith("-") and len(nxt) > 1):
                eligible = name in pattern_flags or nxt.lower() in BOOL_WORDS
                free.append([nxt, len(options) - 1, eligible])
                next(it)
            continue
        free.append([tok, None, False])
    positional = _choose_positionals(free)
    for k, (tok, opt, _) in enumerate(free):
        if opt is not None and k not in positional:
            options[opt] = f"{options[opt]}={tok}"
    return options + ["--"] + [free[k][0] for k in sorted(positional)]


def _choose_positionals(free) -> set[int]:
    sure = {k for k, (_, _, eligible) in enumerate(free) if not eligible}
    ambiguous = [k for k in range(len(free)) if k not in sure]
    need = max(0, min(N_POSITIONALS - len(sure), len(ambiguous)))

    def score(extra):
        chosen = sorted(sure | set(extra))
        first_exists = bool(chosen) and os.path.exists(free[chosen[0]][0])
        adjacent = len(chosen) < 2 or chosen[-1] - chosen[0] == len(chosen) - 1
        return (first_exists, adjacent, tuple(chosen))

    best = max(itertools.combinations(ambiguous, need), key=score)
    return sure | set(best)


def _is_number(tok: str) -> bool:
    try:
        float(tok)
        return True
    except ValueError:
        return False


def parse_bool(text) -> bool:
    if isinstance(text, bool):
        return text
    value = BOOL_WORDS.get(str(text).lower())
    if value is None:
        raise ValueError(f"expected true or false, got {text!r}")
    return value
