"""The usage examples in the eval modules' docstrings run and give what they show."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["grounding", "soda", "trajectory", "prompts", "tables", "hf_metrics"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(f"pite.eval.{module}"), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
