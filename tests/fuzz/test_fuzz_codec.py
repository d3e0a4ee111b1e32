"""Fuzzed hub frames: ``codec.decode`` and ``codec.inspect`` raise CodecError and nothing else."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dsmt import codec
from dsmt.errors import CodecError
from dsmt.event import ATTRIBUTE, LEASE, Address, Sequencer

from . import fuzz_settings, fuzz_timeout, mutants

pytestmark = fuzz_timeout(120)

SEQ = Sequencer(Address("fuzz", "i1"))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**64, 2**64),
                    st.floats(), st.text(max_size=8), st.binary(max_size=8))
payloads = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=8)
VALID = [codec.encode(SEQ.make("/org/dsmt/x/", ATTRIBUTE, {"field": "f", "value": "v"})),
         codec.encode(SEQ.make("/a/b/", LEASE, {"op": "register", "identifier": "l1",
                                                  "duration": 60.0, "type": None},
                               to=Address("alice", "a1"))),
         codec.encode(SEQ.make("/a/", "urn:x", [1, 2.5, b"\x00", {"k": None}], retain=True))]


def _item(value):
    try:
        return msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):
        return b"\xc0"


frames = st.one_of(
    st.tuples(st.sampled_from([b"/a/", b"/org/dsmt/x/", b"", b"a", b"/\xff/", b"/*/"]),
              st.binary(max_size=64)),
    st.tuples(st.sampled_from(VALID), st.integers(0, 11), payloads).map(
        lambda t: (t[0][0], _replace(t[0][1], t[1], t[2]))),
    st.sampled_from(VALID),
)


def _replace(body: bytes, index: int, value) -> bytes:
    items = msgpack.unpackb(body, raw=False)
    items[index] = value
    try:
        return msgpack.packb(items, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):
        return body[:-1]


def check(pair: tuple[bytes, bytes]) -> None:
    for f in (codec.decode, codec.inspect):
        try:
            f(pair)
        except CodecError:
            pass


@fuzz_settings()
@given(pair=frames, seed=st.integers(0, 2**32), which=st.integers(0, 1))
def test_a_fuzzed_frame_pair_decodes_or_raises_codec_error(pair, seed, which):
    check(pair)
    for m in mutants(pair[which], seed):
        check((m, pair[1]) if which == 0 else (pair[0], m))


@pytest.mark.parametrize("frames", [(), (b"/a/",), (b"/a/", b"", b""), (b"/a/", b"\xc1"),
                                    (b"/a/", b"\xd4\x01\x00"), (b"/a/", b"\x81\x01\x01")])
def test_a_frame_list_of_the_wrong_shape_raises_codec_error(frames):
    with pytest.raises(CodecError):
        codec.decode(frames)
