"""Name -> constructor tables for model parts, so that a YAML config can say `backbone: {name: alexnet}`.

Registration happens at import of the module that defines a part; `build_model` imports them all.
"""
from __future__ import annotations

from ..errors import ConfigError

BACKBONES: dict = {}
NECKS: dict = {}
HEADS: dict = {}


def _register(table, name):
    def deco(cls):
        if name in table:
            raise ValueError(f"duplicate registration of {name!r}")
        table[name] = cls
        return cls
    return deco


def register_backbone(name):
    return _register(BACKBONES, name)


def register_neck(name):
    return _register(NECKS, name)


def register_head(name):
    return _register(HEADS, name)


def build_part(table, kind, component):
    if component is None:
        return None
    if component.name not in table:
        raise ConfigError(f"unknown {kind} {component.name!r}; known: {', '.join(sorted(table))}")
    try:
        return table[component.name](**component.args)
    except TypeError as e:
        raise ConfigError(f"bad arguments for {kind} {component.name!r}: {e}") from None
