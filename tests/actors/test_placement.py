"""Placement is a pure function of the view: same view, same assignment, on every sliver."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.placement import overshoot, place, place_service, share
from actors.plan import Placement, Service

NAMES = [f"s{i}" for i in range(1, 13)]


def service(name="web", replicas=3, **placement) -> Service:
    return Service(name, package="file:///x", sha256="0" * 64, version="1",
                   replicas=replicas, placement=Placement(**placement))


views = st.dictionaries(st.sampled_from(NAMES),
                        st.lists(st.sampled_from(["edge", "big"]), unique=True).map(tuple),
                        min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(views, st.integers(0, 20), st.randoms())
def test_the_same_view_gives_the_same_assignment_whatever_its_order(view, replicas, rnd):
    items = list(view.items())
    rnd.shuffle(items)
    s = service(replicas=replicas)
    assert place_service(s, dict(items)) == place_service(s, view)
    assert place_service(s, dict(items)).counts == place_service(s, dict(reversed(items))).counts


@settings(max_examples=200, deadline=None)
@given(views, st.integers(0, 20), st.one_of(st.none(), st.integers(1, 4)))
def test_exactly_replicas_run_when_the_slivers_have_room(view, replicas, cap):
    placed = place_service(service(replicas=replicas, max_per_sliver=cap), view)
    room = len(view) * (cap or replicas)
    assert placed.placed == min(replicas, room)
    assert placed.short == replicas - placed.placed
    assert all(k > 0 for k in placed.counts.values())


@settings(max_examples=200, deadline=None)
@given(views, st.integers(1, 20), st.one_of(st.none(), st.integers(1, 3)),
       st.lists(st.sampled_from(NAMES + ["label:edge", "label:big"]), max_size=2),
       st.lists(st.sampled_from(NAMES + ["label:edge"]), max_size=2),
       st.lists(st.sampled_from(NAMES), max_size=2))
def test_require_exclude_cap_and_quarantine_are_honoured(view, replicas, cap, require, exclude,
                                                          quarantined):
    s = service(replicas=replicas, max_per_sliver=cap, require=tuple(require),
                exclude=tuple(exclude))
    placed = place_service(s, view, quarantined)

    def has(entry, name):
        return entry[6:] in view[name] if entry.startswith("label:") else entry == name

    for name, k in placed.counts.items():
        assert name in view and name not in quarantined
        assert all(has(e, name) for e in require)
        assert not any(has(e, name) for e in exclude)
        assert cap is None or k <= cap


@settings(max_examples=300, deadline=None)
@given(views, st.integers(1, 20), st.one_of(st.none(), st.integers(1, 4)), st.data())
def test_when_a_sliver_dies_only_its_instances_move(view, replicas, cap, data):
    s = service(replicas=replicas, max_per_sliver=cap)
    before = place_service(s, view)
    dead = data.draw(st.sampled_from(sorted(view)))
    after = place_service(s, {k: v for k, v in view.items() if k != dead})
    for name, k in before.counts.items():
        if name != dead:
            assert after.counts.get(name, 0) >= k, (name, before.counts, after.counts)
    moved = sum(after.counts.values()) - sum(k for n, k in before.counts.items() if n != dead)
    assert moved <= before.counts.get(dead, 0)


def test_all_runs_one_instance_on_every_eligible_sliver():
    view = {"s1": ("edge",), "s2": (), "s3": ("edge",)}
    placed = place_service(service(replicas="all", require=("label:edge",)), view)
    assert placed.counts == {"s1": 1, "s3": 1}


def test_three_replicas_on_five_slivers_spread_one_each():
    view = {n: () for n in NAMES[:5]}
    placed = place_service(service(replicas=3), view)
    assert sorted(placed.counts.values()) == [1, 1, 1]


def test_services_rank_the_slice_differently_and_share_says_what_runs_here():
    view = {n: () for n in NAMES}
    plan = [service(f"svc{i}", replicas=1) for i in range(8)]
    assignment = place(plan, view)
    assert len({next(iter(p.counts)) for p in assignment.values()}) > 1
    mine = next(iter(assignment["svc0"].counts))
    assert share(assignment, mine)["svc0"] == 1


def test_overshoot_counts_instances_above_the_target():
    assignment = place([service(replicas=2)], {"s1": (), "s2": (), "s3": ()})
    running = {"s1": {"web": 1}, "s2": {"web": 1}, "s3": {"web": 1}}
    assert overshoot(assignment, running) == {"web": 1}


def test_the_placed_slivers_and_as_many_warm_standbys_install_and_the_rest_wait():
    from actors.placement import installs, ranked

    web = Service("web", "file:///x", "0" * 64, "1", replicas=3)
    slivers = [f"s{i}" for i in range(10)]
    assignment = place([web], {s: () for s in slivers})
    order = ranked("web", slivers)
    assert [s for s in order if installs(assignment, s)] == order[:6]
    assert [s for s in order if installs(assignment, s, standby=1)] == order[:4]
    # the first standby is the one that inherits an instance when a placed sliver dies
    without = place([web], {s: () for s in order if s != order[0]})
    assert set(without["web"].counts) == set(order[1:4])


def test_a_service_with_no_replicas_is_installed_nowhere():
    from actors.placement import installs

    idle = Service("idle", "file:///x", "0" * 64, "1", replicas=0)
    assignment = place([idle], {"s1": (), "s2": ()})
    assert installs(assignment, "s1") == [] and installs(assignment, "s2") == []
