"""Stages: one module per ``asctool`` subcommand, named like the command.

Each stage module is a thin layer: it reads artifacts, calls library
functions (front end, models, training, scoring, ...) and writes artifacts,
returning a small summary dict for the CLI to print. Its entry point is
``run(...)``. No stage imports another stage; what two stages share lives in a
library module below (see ``docs/architecture.md``).
"""
