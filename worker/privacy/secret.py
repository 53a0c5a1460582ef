"""A value that must never be printed: API keys live only inside a Secret.

Why a class and not a str: a str leaks through repr(), f-strings, logging of locals and exception
messages. A Secret renders as ``'***'`` everywhere; the only way to the value is ``reveal()``, which
is called at the single place that builds the ``Api-Token`` header.
"""

from __future__ import annotations

from typing import NoReturn


class Secret:
    """Opaque holder for a credential."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The raw value; only for the HTTP header that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> NoReturn:  # pragma: no cover - refuse to pickle a credential by accident
        raise TypeError("Secret values are not picklable")
