"""Developer sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s typecheck`` and friends."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.default_venv_backend = "venv"

# torch 2.13.0 is the CPU wheel on our machines; an unpinned torch pulls CUDA builds.
TORCH_CPU = "torch==2.13.0"


@nox.session
def tests(session: nox.Session) -> None:
    """NumPy + autograd + array-api-strict (torch/JAX tests skip)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def tests_backends(session: nox.Session) -> None:
    """Adds torch (CPU) and JAX (CPU): the full CPU backend matrix, as CI runs it."""
    session.install(TORCH_CPU)
    session.install("-e", ".[test,torch,jax]")
    session.run("pytest", *session.posargs)


@nox.session
def tests_gpu(session: nox.Session) -> None:
    """CuPy and torch CUDA tests (``-m gpu``); needs an NVIDIA GPU and CUDA 12."""
    session.install("torch")
    session.install("-e", ".[test,torch,cupy]")
    session.run("pytest", "-m", "gpu", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, and numpydoc validation of the public docstrings."""
    session.install("ruff>=0.5")
    session.run(
        "ruff", "check", "surrogate_natgrad", "tests", "benchmarks", "docs", "noxfile.py"
    )
    # Parameters, Returns and (for top-level names) Examples of every public docstring;
    # the examples themselves run in tests/test_docs.py.
    session.install("-e", ".[docs]")
    session.run("python", "docs/validate_docstrings.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy on the package."""
    session.install("mypy>=1.10")
    session.install("-e", ".[test]")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site into docs/_build/html, with warnings as errors.

    ``nox -s docs -- -E`` (or any sphinx-build options) rebuilds from scratch.
    """
    session.install("-e", ".[docs]")
    session.run(
        "sphinx-build", "-W", "--keep-going", "-b", "html", *session.posargs,
        "docs", "docs/_build/html",
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmark harness (quick sizes unless arguments say otherwise)."""
    session.install(TORCH_CPU)
    session.install("-e", ".[test,torch,jax,plot]")
    session.run(
        "python",
        "-m",
        "surrogate_natgrad",
        "bench",
        *(session.posargs or ["all", "--size", "quick"]),
    )


@nox.session
def hypothesis(session: nox.Session) -> None:
    """Property-based tests with the long profile (500 examples per property)."""
    session.install("-e", ".[test]")
    session.env["HYPOTHESIS_PROFILE"] = "long"
    session.run("pytest", "tests/test_properties.py", *session.posargs)
