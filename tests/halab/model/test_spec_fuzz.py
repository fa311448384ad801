"""Fuzz the spec loader: any input gives a valid spec or our ConfigError, nothing else."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from halab.model.errors import ConfigError
from halab.model.spec import LabSpec, load_spec
from halab.model.stackconfig import read_stack

KEYS = [*sorted(read_stack("dev").values), "bogus", "zones", "hosts"]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["10.0.1.0/24", "10.0.1.100", "0.0.0.0/0", "lb", "web", "fortigate", "::1"]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)


def _accepts(values: Any) -> None:
    try:
        spec = load_spec(values, stack="fuzz")
    except ConfigError as exc:
        line = exc.line()
        assert line.startswith("ha-web-lab") and "\n" not in line
    else:
        assert isinstance(spec, LabSpec)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8))
def test_random_config_never_raises_anything_else(values: dict[str, Any]) -> None:
    _accepts(values)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(KEYS), value=json_values, data=st.data())
def test_one_mutated_key_of_a_valid_config(key: str, value: Any, data: st.DataObject) -> None:
    values = dict(read_stack("staging").values)
    values[key] = value
    if isinstance(values.get("hosts"), list) and values["hosts"] and data.draw(st.booleans()):
        index = data.draw(st.integers(0, len(values["hosts"]) - 1))
        host = values["hosts"][index]
        if isinstance(host, dict):
            values["hosts"][index] = {
                **host,
                data.draw(st.sampled_from(["name", "role", "addresses", "vcpus"])): value,
            }
    _accepts(values)


@given(st.one_of(json_values, st.lists(json_values)))
@settings(max_examples=100, deadline=None)
def test_not_even_a_mapping(values: Any) -> None:
    _accepts(values)
