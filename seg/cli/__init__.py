"""The command lines, each `python -m seg.cli.NAME --help`: `train`, `evaluate`, `predict`, `download`,
`tau` (the logit adjustment's tau), `clicks` (SAM's click curve) and `refine` (a model refined by SAM).
`common` holds what they share. Library code lives in the rest of `seg`; a command line parses its
arguments, calls the library and prints.
"""
