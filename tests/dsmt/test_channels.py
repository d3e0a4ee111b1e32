"""Channel grammar properties: valid names round-trip, everything else is a ChannelError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dsmt import channels
from dsmt.errors import ChannelError

# Element octets per the PsEPR grammar, as the characters a str holds.
_ASCII_OK = [chr(b) for b in range(0x21, 0x7F) if b not in (0x2F, 0x40)]
ascii_element = st.text(st.sampled_from(_ASCII_OK), min_size=1, max_size=12).filter(
    lambda e: e != "*")
unicode_element = st.text(st.characters(min_codepoint=0xA0, max_codepoint=0x2FFF,
                                        exclude_categories=("Cs",)), min_size=1, max_size=4)
element = st.one_of(ascii_element, unicode_element)
valid_elements = st.lists(element, min_size=1, max_size=8)


@given(valid_elements)
def test_a_channel_joined_from_valid_elements_splits_back_into_them(parts):
    channel = channels.join(*parts)
    assert channels.elements(channel) == tuple(parts)
    assert channels.validate(channel) == channel


@given(valid_elements, valid_elements)
def test_a_prefix_receives_exactly_the_channels_under_it_on_whole_elements(a, b):
    prefix, channel = channels.join(*a), channels.join(*b)
    expected = tuple(b[:len(a)]) == tuple(a)
    assert channels.is_under(channel, prefix) == expected
    assert channels.is_under(channel, channels.EVERYTHING)


@given(valid_elements, st.integers(0, 7), st.sampled_from(["", "*", "a/b", "@", " ", "\x7f",
                                                            "\x00", "\t", "x@y", "a b"]))
def test_an_element_with_a_forbidden_octet_or_reserved_form_is_rejected(parts, at, bad):
    parts = list(parts)
    parts.insert(min(at, len(parts)), bad)
    raw = "/" + "/".join(parts) + "/"
    if bad == "a/b":  # splits into two valid elements: that is a different, valid channel
        assert channels.validate(raw) == raw
        return
    with pytest.raises(ChannelError):
        channels.validate(raw)


@given(valid_elements)
def test_a_missing_leading_or_trailing_slash_is_rejected(parts):
    body = "/".join(parts)
    for raw in (body, "/" + body, body + "/"):
        with pytest.raises(ChannelError):
            channels.validate(raw)


@given(st.one_of(st.text(max_size=40), st.binary(max_size=40), st.integers(), st.none()))
def test_anything_is_either_a_valid_channel_or_a_channel_error(value):
    try:
        channel = channels.validate(value)
    except ChannelError:
        return
    assert channels.join(*channels.elements(channel)) == channel


def test_slash_alone_is_a_subscription_not_a_channel():
    assert channels.validate_subscription("/") == "/"
    with pytest.raises(ChannelError):
        channels.validate("/")


def test_a_channel_over_the_byte_limit_is_rejected():
    with pytest.raises(ChannelError, match="longer"):
        channels.validate("/" + "a" * channels.MAX_CHANNEL_BYTES + "/")
