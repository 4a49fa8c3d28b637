"""Argument types shared by the `pite` subcommands' parsers."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """argparse `type=` for counts and sizes: an int >= 1, else a usage error naming the value."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value
