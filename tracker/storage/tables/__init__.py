"""The Store's methods, written once for both databases.

Each module holds one area's transaction scripts (``tracker.storage.script``) and a
mixin whose methods run them: ``self.transact(make_script)`` for a write,
``self.read(script)`` for a read. A backend's store class is these mixins over its
database class, which supplies ``transact`` and ``read`` (and the driver, the dialect
and the migrations behind them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from tracker.storage.script import Script, ScriptFactory

T = TypeVar("T")


class Tables:
    """Base of the mixins: what they ask of the database class they are mixed over."""

    if TYPE_CHECKING:  # supplied by SQLiteDatabase / PostgresDatabase (not shadowed here)

        async def transact(self, script: ScriptFactory[T]) -> T: ...

        async def read(self, script: Script[T]) -> T: ...

        async def read_behind(self, script: Script[T]) -> T: ...

        async def read_all(self, scripts: Sequence[Script[Any]]) -> list[Any]: ...
