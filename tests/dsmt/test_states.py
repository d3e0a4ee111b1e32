"""The state tables: what each machine allows, and what it refuses."""

from __future__ import annotations

import pytest

from dsmt import states
from dsmt.errors import TransitionError


@pytest.mark.parametrize("alias", ["initialized", "initalized"])
def test_component_accepts_the_original_spellings_of_initiated(alias):
    assert states.COMPONENT.check(states.REQUESTED, alias) == states.INITIATED
    assert states.COMPONENT.normalize(alias) == states.INITIATED


def test_component_lifecycle_follows_the_original_order():
    order = ["undefined", "requested", "initiated", "instantiated", "running", "terminated"]
    for current, wanted in zip(order, order[1:]):
        assert states.COMPONENT.check(current, wanted) == wanted


@pytest.mark.parametrize("machine", [states.COMPONENT, states.CONTAINER], ids=lambda m: m.name)
def test_failed_is_reachable_from_every_state_but_deselected(machine):
    for state in machine.states - {states.FAILED, states.DESELECTED}:
        assert machine.allowed(state, states.FAILED), state


def test_component_cannot_skip_from_undefined_to_running():
    with pytest.raises(TransitionError) as info:
        states.COMPONENT.check(states.UNDEFINED, states.RUNNING)
    assert (info.value.current, info.value.wanted) == ("undefined", "running")


def test_unknown_state_names_are_refused():
    with pytest.raises(TransitionError):
        states.PROCESS.normalize("zombie")


def test_process_states_are_supervisords():
    assert states.PROCESS.states == {
        "stopped", "starting", "running", "backoff", "stopping", "exited", "fatal"}
    assert states.PROCESS.allowed("starting", "backoff")
    assert states.PROCESS.allowed("backoff", "fatal")
    assert not states.PROCESS.allowed("stopped", "running")


def test_every_transition_target_is_a_known_state():
    for machine in states.MACHINES.values():
        for state, targets in machine.transitions.items():
            assert targets <= machine.states, (machine.name, state)
        assert machine.initial in machine.states
