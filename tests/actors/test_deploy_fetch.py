"""Fetching packages: mandatory sha256, Range resume, bounded retries with backoff, size cap."""

from __future__ import annotations

import hashlib
import os

import pytest

from actors.deploy.errors import ChecksumError, FetchError
from actors.deploy.fetch import FetchLimits, fetch
from actors.deploy.verify import verify

pytestmark = pytest.mark.timeout(20)

DATA = os.urandom(300_000)
SHA = hashlib.sha256(DATA).hexdigest()
FAST = FetchLimits(tries=4, backoff_min=0.5, backoff_max=1.5, timeout=5)


@pytest.fixture
def served(http_server):
    (http_server.root / "app-1.0.tar.gz").write_bytes(DATA)
    return http_server, http_server.url("app-1.0.tar.gz")


def test_a_file_url_is_copied_into_place(tmp_path):
    src = tmp_path / "src.tar.gz"
    src.write_bytes(DATA)
    dest = fetch(src.as_uri(), tmp_path / "out.tar.gz", sha256=SHA)
    assert dest.read_bytes() == DATA and not (tmp_path / "out.tar.gz.part").exists()


def test_a_missing_file_url_is_a_fetch_error(tmp_path):
    with pytest.raises(FetchError, match="No such file"):
        fetch((tmp_path / "nope.tar.gz").as_uri(), tmp_path / "out.tar.gz", sha256=SHA)


@pytest.mark.parametrize("sha256", [None, "", "abc", "g" * 64])
def test_a_source_without_a_valid_sha256_is_refused_before_any_request(served, tmp_path, sha256):
    server, url = served
    with pytest.raises(FetchError, match="sha256"):
        fetch(url, tmp_path / "out.tar.gz", sha256=sha256)
    assert server.requests == []


def test_an_http_download_lands_whole(served, tmp_path):
    server, url = served
    seen = []
    dest = fetch(url, tmp_path / "out.tar.gz", sha256=SHA,
                 progress=lambda d, t: seen.append((d, t)))
    assert dest.read_bytes() == DATA
    assert seen[-1] == (len(DATA), len(DATA))
    assert server.requests == [("/app-1.0.tar.gz", None)]


def test_a_download_cut_short_resumes_with_a_range_request(served, tmp_path):
    server, url = served
    server.cut_first = 1
    delays = []
    dest = fetch(url, tmp_path / "out.tar.gz", sha256=SHA, limits=FAST, sleep=delays.append)
    assert dest.read_bytes() == DATA
    assert server.requests == [("/app-1.0.tar.gz", None),
                               ("/app-1.0.tar.gz", f"bytes={len(DATA) // 2}-")]
    assert delays == [0.5]


def test_a_part_left_by_a_previous_agent_is_continued(served, tmp_path):
    server, url = served
    (tmp_path / "out.tar.gz.part").write_bytes(DATA[:1000])
    fetch(url, tmp_path / "out.tar.gz", sha256=SHA)
    assert (tmp_path / "out.tar.gz").read_bytes() == DATA
    assert server.requests == [("/app-1.0.tar.gz", "bytes=1000-")]


def test_a_server_that_ignores_range_gives_a_fresh_download(served, tmp_path):
    server, url = served
    server.ignore_range = True
    (tmp_path / "out.tar.gz.part").write_bytes(b"garbage that is not the start")
    fetch(url, tmp_path / "out.tar.gz", sha256=SHA)
    assert (tmp_path / "out.tar.gz").read_bytes() == DATA


def test_server_errors_are_retried_with_exponential_backoff(served, tmp_path):
    server, url = served
    server.fail_first = 3
    delays = []
    fetch(url, tmp_path / "out.tar.gz", sha256=SHA, limits=FAST, sleep=delays.append)
    assert delays == [0.5, 1.0, 1.5]
    assert len(server.requests) == 4


def test_retries_are_bounded(served, tmp_path):
    server, url = served
    server.fail_first = 10
    delays = []
    with pytest.raises(FetchError, match=r"HTTP 503 .*gave up after 4 tries"):
        fetch(url, tmp_path / "out.tar.gz", sha256=SHA, limits=FAST, sleep=delays.append)
    assert len(server.requests) == 4 and len(delays) == 3


def test_a_missing_package_is_not_retried(http_server, tmp_path):
    delays = []
    with pytest.raises(FetchError, match="HTTP 404") as info:
        fetch(http_server.url("nope.tar.gz"), tmp_path / "o.tar.gz", sha256=SHA,
              sleep=delays.append)
    assert info.value.url == http_server.url("nope.tar.gz")
    assert delays == [] and len(http_server.requests) == 1


def test_an_unreachable_url_fails_after_bounded_tries(closed_port, tmp_path):
    url = f"http://127.0.0.1:{closed_port}/app-1.0.tar.gz"
    delays = []
    with pytest.raises(FetchError, match="Connection refused.*gave up after 4 tries") as info:
        fetch(url, tmp_path / "o.tar.gz", sha256=SHA, limits=FAST, sleep=delays.append)
    assert info.value.url == url and info.value.stage == "fetch"
    assert delays == [0.5, 1.0, 1.5]
    assert not (tmp_path / "o.tar.gz").exists()


def test_a_package_over_the_size_cap_is_refused_and_its_part_removed(served, tmp_path):
    server, url = served
    with pytest.raises(FetchError, match="over the cap of 1000"):
        fetch(url, tmp_path / "o.tar.gz", sha256=SHA, limits=FetchLimits(max_bytes=1000))
    assert list(tmp_path.glob("o.tar.gz*")) == []


def test_a_file_over_the_size_cap_is_refused(tmp_path):
    src = tmp_path / "big.tar.gz"
    src.write_bytes(DATA)
    with pytest.raises(FetchError, match="over the cap"):
        fetch(src.as_uri(), tmp_path / "o.tar.gz", sha256=SHA, limits=FetchLimits(max_bytes=10))


def test_an_unknown_scheme_is_refused(tmp_path):
    with pytest.raises(FetchError, match="unsupported source scheme 'ftp'"):
        fetch("ftp://example.org/a.tar.gz", tmp_path / "o.tar.gz", sha256=SHA)


def test_a_checksum_mismatch_names_both_digests_and_removes_the_file(tmp_path):
    path = tmp_path / "app-1.0.tar.gz"
    path.write_bytes(b"tampered")
    with pytest.raises(ChecksumError) as info:
        verify(path, SHA)
    assert info.value.expected == SHA
    assert info.value.actual == hashlib.sha256(b"tampered").hexdigest()
    assert SHA in str(info.value) and info.value.actual in str(info.value)
    assert not path.exists()


def test_a_matching_checksum_keeps_the_file(tmp_path):
    path = tmp_path / "app-1.0.tar.gz"
    path.write_bytes(DATA)
    verify(path, SHA.upper())
    assert path.exists()
