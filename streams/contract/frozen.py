"""A faster ``__init__`` for frozen dataclasses, for records made once per event.

A frozen dataclass sets each field with ``object.__setattr__``, looked up anew per field: about five
times slower than setting the slots directly through their descriptors, which is what this does for a
slotted class. A class without slots gets its instance dict built in one go (one literal, set once);
orjson serialises such a dataclass straight from that dict, twice as fast as field by field. Either
way the class stays a frozen dataclass (assignment still raises ``FrozenInstanceError``).
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any, TypeVar

Cls = TypeVar("Cls", bound=type)


def fast_init(cls: Cls) -> Cls:
    """Replace the dataclass ``__init__`` of ``cls`` (frozen) by one that sets its slots directly, or
    (without slots) its instance dict at once; the fields keep their order either way."""
    slotted = "__slots__" in cls.__dict__
    params, defaults, body = [], {}, []
    for field in fields(cls):
        name = field.name
        if field.default is not MISSING:
            defaults[f"_default_{name}"] = field.default
            params.append(f"{name}=_default_{name}")
        elif field.default_factory is not MISSING:
            defaults[f"_factory_{name}"] = field.default_factory
            params.append(f"{name}=_MISSING")
            body.append(f"    if {name} is _MISSING: {name} = _factory_{name}()")
        else:
            params.append(name)
        if slotted:
            defaults[f"_set_{name}"] = cls.__dict__[name].__set__
            body.append(f"    _set_{name}(self, {name})")
    if not slotted:
        defaults["_set_dict"] = cls.__dict__["__dict__"].__set__
        items = ", ".join(f"{field.name!r}: {field.name}" for field in fields(cls))
        body.append(f"    _set_dict(self, {{{items}}})")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body or ["    pass"]) + "\n"
    namespace: dict[str, Any] = {"_MISSING": MISSING, **defaults}
    exec(source, namespace)  # the generated code only sets this class's own slots
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[misc]
    return cls
