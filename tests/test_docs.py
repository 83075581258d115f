"""Every code example of the documentation and of the docstrings runs, and gives its output.

* Pages: the fenced ``python`` and ``pycon`` blocks of ``docs/*.md`` and ``README.md`` run in
  order, one namespace per page (a page is one session). Blocks with ``>>>`` prompts are
  doctests (their output is checked); prompt-less ``python`` blocks are executed. Blocks
  written as ``{code-block} python`` (MyST directive) or ``text``/``bash`` are not run: the
  documentation uses them only for code that needs hardware or features not present (a GPU,
  a provisional API).
* Docstrings: the ``Examples`` sections of every module of the package, found by
  :class:`doctest.DocTestFinder`.

Both use ``NORMALIZE_WHITESPACE | ELLIPSIS``. A page or module that imports torch, JAX or
CuPy is skipped when that library is not installed.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
import re
import warnings
from pathlib import Path

import pytest

import surrogate_natgrad

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
OPTIONS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS

# Design notes whose code blocks are interface sketches, not runnable examples.
NOT_EXAMPLES = {"architecture.md"}
# Importing these runs a program.
SKIP_MODULES = {"surrogate_natgrad.__main__"}

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$")
_OPTIONAL_LIBRARIES = ("torch", "jax", "cupy", "dask", "matplotlib")


def _pages() -> list[Path]:
    pages = sorted(p for p in DOCS.glob("*.md") if p.name not in NOT_EXAMPLES)
    return [*pages, ROOT / "README.md"]


def _code_blocks(text: str) -> list[tuple[str, int, str]]:
    """Return ``(language, first line number, code)`` of the fenced blocks of a page."""
    blocks = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, info = opening["fence"], opening["info"].strip()
        language = info.split()[0] if info else ""
        start = index + 1
        index = start
        while index < len(lines):
            closing = _FENCE.match(lines[index])
            if closing and closing["fence"][0] == fence[0] and len(closing["fence"]) >= len(
                fence
            ) and not closing["info"].strip():
                break
            index += 1
        blocks.append((language, start + 1, "\n".join(lines[start:index]) + "\n"))
        index += 1
    return blocks


def _skip_unless_libraries(code: str, where: str) -> None:
    for library in _OPTIONAL_LIBRARIES:
        if re.search(rf"^\s*(>>> )?(import|from) {library}\b", code, re.MULTILINE):
            if importlib.util.find_spec(library) is None:
                pytest.skip(f"{where} needs {library}, which is not installed")


def _run_doctest(test: doctest.DocTest) -> None:
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    report: list[str] = []
    with warnings.catch_warnings():
        # Examples show results, not the warnings that libraries emit on the way.
        warnings.simplefilter("ignore", DeprecationWarning)
        runner.run(test, out=report.append, clear_globs=False)
    results = runner.summarize(verbose=False)
    if results.failed:
        pytest.fail("".join(report), pytrace=False)


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.name)
def test_page_examples(page: Path) -> None:
    """The code blocks of a documentation page run and print what the page says."""
    text = page.read_text(encoding="utf-8")
    blocks = [
        (language, line, code)
        for language, line, code in _code_blocks(text)
        if language in ("python", "pycon", "py")
    ]
    if not blocks:
        pytest.skip(f"{page.name} has no Python examples")
    _skip_unless_libraries("".join(code for _, _, code in blocks), page.name)
    namespace: dict[str, object] = {"__name__": f"docs.{page.stem}"}
    parser = doctest.DocTestParser()
    for language, line, code in blocks:
        name = f"{page.name}:{line}"
        if ">>>" in code:
            test = parser.get_doctest(code, namespace, name, str(page), line - 1)
            _run_doctest(test)
            namespace.update(test.globs)  # DocTest copies its globals; carry them on
        else:
            exec(compile(code, name, "exec"), namespace)


def _modules() -> list[str]:
    names = [surrogate_natgrad.__name__]
    # A package that fails to import is reported by its own test, not at collection.
    for info in pkgutil.walk_packages(
        surrogate_natgrad.__path__, prefix="surrogate_natgrad.", onerror=lambda name: None
    ):
        if info.name not in SKIP_MODULES:
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("module_name", _modules())
def test_docstring_examples(module_name: str) -> None:
    """The ``Examples`` sections of the docstrings of a module run and print what they say."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] in _OPTIONAL_LIBRARIES:
            pytest.skip(f"{module_name} needs {error.name}, which is not installed")
        raise
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = [t for t in finder.find(module, module_name) if t.examples]
    if not tests:
        pytest.skip(f"{module_name} has no docstring examples")
    _skip_unless_libraries("".join(e.source for t in tests for e in t.examples), module_name)
    for test in sorted(tests, key=lambda t: t.name):
        _run_doctest(test)
