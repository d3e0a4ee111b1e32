"""The node registry: paths to refs, and the supervisor of a path."""

from __future__ import annotations

from dsmt.registry import Registry


def test_the_supervisor_of_a_path_is_its_parent_with_the_last_element_as_child_id():
    registry = Registry()
    root = object()
    registry.register("/s1/app", root)
    assert registry.supervisor_of("/s1/app/demo-app") == ("/s1/app", "demo-app", root)
    assert registry.supervisor_of("/s1/nowhere/app") == ("/s1/nowhere", "app", None)
