"""Fuzzed plan TOML: ``actors.plan.loads`` returns a Plan or raises ConfigError, nothing else.

A TOML syntax error comes out as ConfigError too. Inputs: random text,
mutants of the shipped plan (conf/plan.toml), and the shipped plan with one
value replaced by a random TOML value of another type.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import plan
from dsmt.errors import ConfigError

from . import fuzz_settings, fuzz_timeout, mutants

pytestmark = fuzz_timeout(120)

VALID = (Path(__file__).resolve().parents[2] / "conf" / "plan.toml").read_text()
LINES = VALID.splitlines()
values = st.sampled_from([
    '""', '"x"', "0", "-1", "1e999", "nan", "inf", "-inf", "9" * 30, "true", "[]", "[1, \"a\"]",
    "{}", "{a = 1}", '"all"', '"auto"', "70000", "0.0", "1979-05-27", '"file:///../x"',
    '"\\u0000"', "[[]]", '"' + "a" * 64 + '"', '"' + "G" * 64 + '"',
])
replaced = st.tuples(st.integers(0, len(LINES) - 1), values).map(
    lambda t: "\n".join(LINES[:t[0]] + [LINES[t[0]].split("=")[0] + "= " + t[1]]
                        + LINES[t[0] + 1:]))
texts = st.one_of(st.text(max_size=60), st.just(VALID), replaced)


def check(text: str) -> None:
    try:
        plan.loads(text, "fuzz.toml")
    except ConfigError:
        pass


@fuzz_settings()
@given(text=texts, seed=st.integers(0, 2**32))
def test_a_fuzzed_plan_loads_or_raises_config_error(text, seed):
    check(text)
    for raw in mutants(text.encode("utf-8", "surrogatepass"), seed):
        check(raw.decode("utf-8", "replace"))


def test_a_toml_syntax_error_is_a_config_error():
    with pytest.raises(ConfigError, match="not valid TOML"):
        plan.loads("version = = 1", "fuzz.toml")


def test_the_shipped_plan_loads():
    assert plan.loads(VALID).service("demo-app").replicas == 3
