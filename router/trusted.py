"""Pydantic models built without validation, from values that already have their fields' types.

What ``model_construct`` does, minus its per-field Python work (alias lookups, a deep copy of
every default), which cost more than the rest of building a record on the hot paths (the
inspector's records, the call log's rows). Field names only; unknown names are refused, and
a required field left out is an error. The caller vouches for the types: a test per model
checks that validating the built object's own dump gives it back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

# Per model: every field in order with its default (None for a required one or one with a
# factory), the required names, the names whose default is mutable (copied per object) and
# the fields made by a factory.
_Spec = tuple[
    dict[str, Any], frozenset[str], tuple[str, ...], tuple[tuple[str, Callable[[], Any]], ...]
]
_SPECS: dict[type[BaseModel], _Spec] = {}


def _spec(cls: type[BaseModel]) -> _Spec:
    template: dict[str, Any] = {}
    required: set[str] = set()
    fresh: list[str] = []
    factories: list[tuple[str, Callable[[], Any]]] = []
    for name, field in cls.model_fields.items():
        template[name] = None
        if field.is_required():
            required.add(name)
        elif field.default_factory is not None:  # called with no argument, for each object
            factories.append((name, field.default_factory))  # type: ignore[arg-type]
        else:
            template[name] = field.default
            if isinstance(field.default, dict | list | set):
                fresh.append(name)
    return template, frozenset(required), tuple(fresh), tuple(factories)


def build_trusted[M: BaseModel](
    cls: type[M], values: dict[str, Any], private: dict[str, Any] | None = None
) -> M:
    """An instance of ``cls`` holding ``values`` (field names) and the defaults of the rest,
    with ``private`` as its private attributes."""
    spec = _SPECS.get(cls)
    if spec is None:
        spec = _SPECS[cls] = _spec(cls)
    template, required, fresh, factories = spec
    unknown = values.keys() - template.keys()
    if unknown or not required <= values.keys():
        missing = required - values.keys()
        raise TypeError(f"{cls.__name__}.trusted: unknown {unknown}, missing {missing}")
    data = dict(template)  # field order, as validation would give
    data.update(values)
    for name in fresh:  # a mutable default is never shared between objects
        if name not in values:
            data[name] = data[name].copy()
    for name, factory in factories:
        if name not in values:
            data[name] = factory()
    built = cls.__new__(cls)
    object.__setattr__(built, "__dict__", data)
    object.__setattr__(built, "__pydantic_fields_set__", set(values))
    object.__setattr__(built, "__pydantic_extra__", None)
    object.__setattr__(built, "__pydantic_private__", private)
    return built
