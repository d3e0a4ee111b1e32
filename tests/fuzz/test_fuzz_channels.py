"""Fuzzed channel names: ``validate`` returns the name or raises ChannelError, nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dsmt import channels
from dsmt.errors import ChannelError

from . import fuzz_settings, fuzz_timeout, mutants

pytestmark = fuzz_timeout(120)

# Pieces of names, valid and hostile: separators, the reserved '*', octets the
# spec forbids, non-UTF-8-encodable surrogates, multi-byte characters.
PIECES = ["/", "/", "/", "*", "a", "org", "dsmt", "-", "_", ".", "..", "~", " ", "%2F", "#",
          "?", "\\", "\x00", "\x1f", "\x7f", "\u00e9", "\u200b", "\ud800", "\uffff",
          "\U0001f600", "x" * 300]
names = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=12).map("".join),
    st.text(max_size=24),
)


def check(name: object) -> None:
    try:
        valid = channels.validate(name)
    except ChannelError:
        return
    assert valid == name
    assert channels.join(*channels.elements(valid)) == valid
    assert channels.is_under(valid, valid)


@fuzz_settings()
@given(name=names, seed=st.integers(0, 2**32))
def test_a_fuzzed_channel_name_is_either_valid_and_round_trips_or_refused(name, seed):
    check(name)
    for raw in mutants(name.encode("utf-8", "surrogatepass"), seed):
        check(raw.decode("utf-8", "surrogateescape"))


@pytest.mark.parametrize("name", [None, 0, b"/a/", ["/a/"], 1.5])
def test_a_channel_that_is_not_a_string_is_refused(name):
    with pytest.raises(ChannelError):
        channels.validate(name)
