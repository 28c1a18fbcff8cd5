"""Named registries, extensible through Python entry points (as in spaCy's ``registry``).

Each kind of pluggable component has one :class:`Registry`::

    from dsbuild.registry import aligners

    @aligners.register("my-aligner")
    class MyAligner: ...

    aligners.get("my-aligner")

Third-party packages add components without touching dsbuild by declaring an entry point in the
group ``dsbuild.<kind>`` (for example ``dsbuild.builders``) whose value is ``module:object``.
Entry points are loaded lazily, the first time a registry is listed or a name is missed.
"""

from __future__ import annotations

import difflib
import threading
import importlib
import logging
import pkgutil
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from dsbuild.errors import UnknownNameError

log = logging.getLogger(__name__)
T = TypeVar("T")
_LOAD_LOCK = threading.RLock()  # re-entrant: importing a module may look up another registry


class Registry(Generic[T]):
    """A mapping from names to components of one kind.

    Args:
        kind: plural noun used in messages and in the entry-point group ``dsbuild.<kind>``.
        autoload: modules to import before listing, so that built-in components register
            themselves (a package name imports every module inside it).
    """

    def __init__(self, kind: str, autoload: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.entry_point_group = f"dsbuild.{kind}"
        self._items: dict[str, T] = {}
        self._autoload = autoload
        self._loaded = False
        self._loading = False

    def register(self, name: str, obj: T | None = None) -> Any:
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted."""

        def _add(item: T) -> T:
            existing = self._items.get(name)
            if existing is not None and existing is not item:
                log.debug("%s %r re-registered by %r", self.kind, name, item)
            self._items[name] = item
            return item

        if obj is not None:
            return _add(obj)
        return _add

    def get(self, name: str) -> T:
        """Return the component called ``name``; raise :class:`UnknownNameError` with close matches."""
        if name not in self._items:
            self._load()
        try:
            return self._items[name]
        except KeyError:
            names = sorted(self._items)
            close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise UnknownNameError(
                f"Unknown {self.kind[:-1] if self.kind.endswith('s') else self.kind} {name!r}.{hint}"
                f" Available: {', '.join(names) or '(none)'}."
            ) from None

    def names(self) -> list[str]:
        """All registered names, sorted."""
        self._load()
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        """(name, component) pairs, sorted by name."""
        for name in self.names():
            yield name, self._items[name]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def _load(self) -> None:
        if self._loaded:
            return
        with _LOAD_LOCK:  # threads that ask during the import must wait for it, not see an empty registry
            if self._loaded or self._loading:  # _loading: a module being imported asked again
                return
            self._loading = True
            try:
                self._import_components()
                self._loaded = True
            finally:
                self._loading = False

    def _import_components(self) -> None:
        for module_name in self._autoload:
            try:
                _import_all(module_name)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:  # a real missing dependency inside the module
                    raise
                log.debug("no built-in %s module %s", self.kind, module_name)
        for ep in entry_points(group=self.entry_point_group):
            if ep.name in self._items:
                continue
            try:
                self._items[ep.name] = ep.load()
            except Exception as exc:  # a broken plugin must not break dsbuild itself
                log.warning("could not load %s entry point %r (%s): %s", self.kind, ep.name, ep.value, exc)


def _import_all(package_name: str) -> None:
    """Import a module, and every submodule when it is a package."""
    module = importlib.import_module(package_name)
    for info in pkgutil.iter_modules(getattr(module, "__path__", []), prefix=package_name + "."):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            importlib.import_module(info.name)


# The registries. Built-in components live in the modules named in ``autoload``.
builders: Registry[Any] = Registry("builders", autoload=("builders",))
translators: Registry[Callable[..., Any]] = Registry("translators", autoload=("dsbuild.translate",))
aligners: Registry[Callable[..., Any]] = Registry("aligners", autoload=("dsbuild.align",))
projectors: Registry[Callable[..., Any]] = Registry("projectors", autoload=("dsbuild.project",))
tokenizers: Registry[Callable[..., Any]] = Registry("tokenizers", autoload=("dsbuild.tokenize",))

ALL_REGISTRIES = {r.kind: r for r in (builders, translators, aligners, projectors, tokenizers)}
executors: Registry[Callable[..., Any]] = Registry("executors", autoload=("dsbuild.execution",))
#: LLM backends (``openai``, ``transformers``, ``vllm``), shared by the llm-annotate builder and the
#: LLM translator
llms: Registry[Callable[..., Any]] = Registry("llms", autoload=("dsbuild.llm",))
