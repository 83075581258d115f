"""Validate the numpydoc docstrings of the public API (run by ``nox -s lint``).

The public API is what the API reference documents: the ``__all__`` of every module listed
in ``docs/api/index.md``, and the public methods and properties of the classes among them.
Each docstring is checked with :func:`numpydoc.validate.validate` for

* a docstring with a one-line summary (``GL08``, ``SS01``), well-formed sections (``GL06``,
  ``GL07``);
* parameters: every parameter documented, none unknown, ``name : type`` formatting
  (``PR01``, ``PR02``, ``PR10``); for named tuples and dataclasses every field documented
  under ``Parameters`` or ``Attributes``;
* returns: a ``Returns`` section for functions that return a value (``RT01``);
* examples: an ``Examples`` section (``EX01``) for the top-level functions and classes of
  ``surrogate_natgrad`` (where most users start; exceptions are exempt). Examples are run
  by ``tests/test_docs.py``.

Usage::

    python docs/validate_docstrings.py            # exit status 1 if anything fails
    python docs/validate_docstrings.py --summary  # counts per check and per file only

Inherited members are validated where they are defined; dataclass and named-tuple
boilerplate (``_replace``, field aliases, ``count``/``index``) is skipped. A method that
overrides one whose docstring (in a base class) has ``Parameters``/``Returns`` sections
needs only a summary: it implements a documented interface.
"""

from __future__ import annotations

import argparse
import enum
import importlib
import inspect
import sys
from collections import Counter
from pathlib import Path

from numpydoc.docscrape import NumpyDocString
from numpydoc.validate import validate

DOCS = Path(__file__).resolve().parent

#: Checks applied to every public name.
CHECKS = ("GL06", "GL07", "GL08", "SS01", "PR01", "PR02", "PR10", "RT01")
#: Checks applied to the top-level names only.
TOP_LEVEL_CHECKS = ("EX01",)
TOP_LEVEL = "surrogate_natgrad"

# Members that Python generates for named tuples, enums and dataclasses.
_GENERATED = {"count", "index", "_make", "_asdict", "_replace", "_fields", "_field_defaults"}


def api_modules() -> list[str]:
    """Return the modules of the API reference, read from ``docs/api/index.md``.

    Returns
    -------
    list of str
        Dotted module names, in the order of the reference.
    """
    text = (DOCS / "api" / "index.md").read_text(encoding="utf-8")
    block = text.split(".. autosummary::", 1)[1].split("```", 1)[0]
    return [
        line.strip()
        for line in block.splitlines()
        if line.strip().startswith("surrogate_natgrad") and not line.strip().startswith(":")
    ]


def _defining_name(obj: object) -> str | None:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        return None
    return f"{module}.{qualname}"


def _is_protocol(cls: type) -> bool:
    return bool(getattr(cls, "_is_protocol", False))


def _documents_interface(cls: type, name: str, protocols: list[type]) -> bool:
    """Whether a base class of ``cls``, or a protocol it implements, documents ``name``.

    An override that implements an interface (``Gaussian.natural_to_mean`` implements
    ``ExponentialFamily.natural_to_mean``, ``Exp.forward`` the ``Bijection`` protocol) may
    keep a one-line docstring saying what is special about it; its parameters and returns
    are those of the interface.
    """
    interfaces = [*cls.__mro__[1:], *(p for p in protocols if p is not cls)]
    for base in interfaces:
        member = vars(base).get(name)
        doc = inspect.getdoc(member) if member is not None else None
        if doc and ("Parameters\n---" in doc or "Returns\n---" in doc):
            return True
    return False


def _class_members(cls: type, protocols: list[type]) -> list[tuple[str, tuple[str, ...]]]:
    """Dotted names and checks of the public methods and properties defined in ``cls``."""
    names = []
    fields = set(getattr(cls, "_fields", ()))
    dataclass_fields = set(getattr(cls, "__dataclass_fields__", {}))
    for name, value in vars(cls).items():
        if name.startswith("_") or name in _GENERATED or name in fields:
            continue
        if name in dataclass_fields:
            continue
        if isinstance(value, staticmethod | classmethod):
            value = value.__func__
        if inspect.isfunction(value) or isinstance(value, property):
            checks = CHECKS
            if _documents_interface(cls, name, protocols):
                checks = tuple(c for c in CHECKS if c not in ("PR01", "RT01"))
            names.append((f"{cls.__module__}.{cls.__qualname__}.{name}", checks))
    return names


def public_names() -> dict[str, tuple[str, ...]]:
    """Return every public name to validate, mapped to the checks that apply to it.

    Returns
    -------
    dict of str to tuple of str
        Import paths (where each object is defined, so that re-exports are checked once)
        and their numpydoc check codes.
    """
    exported: list[tuple[str, object]] = []
    for module_name in api_modules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                exported.append((module_name, obj))
    protocols = [obj for _, obj in exported if inspect.isclass(obj) and _is_protocol(obj)]
    found: dict[str, tuple[str, ...]] = {}
    for module_name, obj in exported:
        path = _defining_name(obj)
        if path is None or not path.startswith("surrogate_natgrad"):
            continue
        checks = CHECKS
        is_exception = inspect.isclass(obj) and issubclass(obj, BaseException)
        if module_name == TOP_LEVEL and not is_exception:
            checks = CHECKS + TOP_LEVEL_CHECKS
        if inspect.isclass(obj) and _is_protocol(obj):
            # A protocol is never instantiated: its signature is (*args, **kwargs).
            checks = tuple(c for c in checks if c != "PR01")
        found[path] = tuple(sorted(set(found.get(path, ()) + checks)))
        if inspect.isclass(obj) and not is_exception:
            for member, member_checks in _class_members(obj, protocols):
                found.setdefault(member, member_checks)
    return found


def _source_file(path: str) -> str:
    """Relative path of the file that defines ``path`` (for grouping the report)."""
    module_name, _, _ = path.partition(".")
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        file = getattr(module, "__file__", None) or module_name
        try:
            return str(Path(file).resolve().relative_to(DOCS.parent))
        except ValueError:
            return file
    return module_name


def _record_fields(path: str) -> tuple[str, ...] | None:
    """The fields of a named tuple or dataclass at ``path`` (None for other objects)."""
    module_name, _, qualname = path.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), qualname)
    except (ImportError, AttributeError):
        return None
    if not inspect.isclass(obj):
        return None
    if isinstance(getattr(obj, "_fields", None), tuple):
        return tuple(obj._fields)
    if hasattr(obj, "__dataclass_fields__"):
        return tuple(
            name for name, f in obj.__dataclass_fields__.items() if f.init and f.repr
        )
    if issubclass(obj, enum.Enum):
        return ()
    return None


def _undocumented_fields(path: str, fields: tuple[str, ...]) -> list[str]:
    """Fields of a record type that neither its Parameters nor its Attributes document."""
    module_name, _, qualname = path.rpartition(".")
    doc = inspect.getdoc(getattr(importlib.import_module(module_name), qualname)) or ""
    parsed = NumpyDocString(doc)
    documented = set()
    for section in ("Parameters", "Attributes", "Other Parameters"):
        for item in parsed[section]:
            documented.update(n.strip() for n in item.name.split(","))
    return [name for name in fields if name not in documented]


def run(summary: bool = False) -> int:
    """Validate the public docstrings and print the failures.

    Parameters
    ----------
    summary : bool, optional
        Print counts per check and per file instead of every failure.

    Returns
    -------
    int
        The number of failures (0 when every docstring passes).
    """
    failures: list[tuple[str, str, str, str]] = []
    for path, checks in sorted(public_names().items()):
        result = validate(path)
        fields = _record_fields(path)
        for code, message in result["errors"]:
            if code == "PR01" and fields is not None:
                continue  # record types: checked against Attributes below
            if code in checks:
                failures.append((_source_file(path), path, code, message))
        if fields and "PR01" in checks:
            missing = _undocumented_fields(path, fields)
            if missing:
                message = f"Fields {missing} documented in neither Parameters nor Attributes"
                failures.append((_source_file(path), path, "PR01", message))
    if summary:
        for (code, count) in sorted(Counter(f[2] for f in failures).items()):
            print(f"{code}: {count}")
        for file, count in sorted(Counter(f[0] for f in failures).items()):
            print(f"{count:4d}  {file}")
    else:
        for file, path, code, message in failures:
            print(f"{file}: {path}: {code} {message}")
    print(f"{len(failures)} docstring problem(s) in {len(public_names())} public names")
    return len(failures)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 if every docstring passes, 1 otherwise.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", action="store_true", help="counts per check and file")
    args = parser.parse_args(argv)
    return 1 if run(summary=args.summary) else 0


if __name__ == "__main__":
    sys.exit(main())
