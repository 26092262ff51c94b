"""The lmcritic pytest plugin (entry point ``pytest11``; disable with ``-p no:lmcritic``).

A test asks for ``lmcritic_results`` and asserts on it with :mod:`lmcritic.testing`::

    @pytest.mark.lmcritic(model="smollm2-135m", probes=["performance.sst2"], config={"performance.sst2": {"n": 100}})
    def test_sentiment(lmcritic_results):
        assert_finding(lmcritic_results, "performance.sst2:accuracy", ge=0.7, alpha=0.05)

The ``lmcritic`` marker (on a test, class or module) says what to critique: ``scan`` arguments (``model``,
``probes``, ``config``, ``stages`` (default False), ``budget``, ``options``) or ``spec=`` (a run spec, as
``lmcritic export-tests`` writes). Tests with the same marker share one run per session. The model may also
come from a ``lmcritic_model`` fixture (override it in ``conftest.py`` to hand over an in-memory model) or
``--lmcritic-model``; ``--lmcritic-run RUN`` checks a stored run instead of running anything.
Importing this module is cheap: nothing heavy loads until a test asks for results.
"""
from __future__ import annotations

from typing import Any

import pytest

from lmcritic.errors import LmcriticError, ModelLoadError

MARKER = "lmcritic"
SCAN_ARGS = ("model", "probes", "config", "stages", "budget", "options", "name", "spec")
_SESSION = pytest.StashKey["_Session"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lmcritic", "lmcritic critique results")
    group.addoption("--lmcritic-run", metavar="RUN", help="check this stored run (id, prefix, latest) instead "
                    "of running the scans the tests' markers describe")
    group.addoption("--lmcritic-store", metavar="PATH", help="run store (default: $LMCRITIC_HOME/runs.sqlite)")
    group.addoption("--lmcritic-model", metavar="MODEL", help="critique this model (name, folder, .gguf) instead "
                    "of the one the markers name")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lmcritic(model=None, probes=None, config=None, stages=False, budget=None, "
                            "options=None, spec=None): what the lmcritic_results fixture critiques")
    config.stash[_SESSION] = _Session(config)


@pytest.fixture
def lmcritic_model() -> Any:
    """None: the marker's model. Override it in ``conftest.py`` to hand an in-memory model (``(model,
    tokenizer)``, a pipeline, a function, a backend) to ``lmcritic_results``; ``--lmcritic-model`` still wins."""
    return None


@pytest.fixture
def lmcritic_results(request: pytest.FixtureRequest, lmcritic_model: object) -> Any:
    """The :class:`~lmcritic.results.Results` this test asserts on (see the module docstring)."""
    session = request.config.stash[_SESSION]
    try:
        return session.results(request.node.get_closest_marker(MARKER), lmcritic_model)
    except ModelLoadError as err:
        pytest.fail(f"lmcritic: {err}; in pytest: --lmcritic-model MODEL, or a lmcritic_model fixture", pytrace=False)
    except LmcriticError as err:  # one line, like the command line: a bad spec or model is not a traceback
        pytest.fail(f"lmcritic: {err}", pytrace=False)


class _Session:
    """Runs shared by the tests of one pytest session, keyed by what they critique."""

    def __init__(self, config: pytest.Config) -> None:
        self.run = config.getoption("lmcritic_run")
        self.store = config.getoption("lmcritic_store")
        self.model = config.getoption("lmcritic_model")
        self._cache: dict[str, Any] = {}

    def results(self, marker: Any, model_fixture: Any) -> Any:
        if self.run:
            return self._once(f"run:{self.run}", lambda: _load(self.run, self.store))
        if marker is None:
            raise LmcriticError("lmcritic_results needs a @pytest.mark.lmcritic(...) marker saying what to "
                                "critique", "or pass --lmcritic-run RUN to check a stored run")
        kwargs = dict(marker.kwargs)
        unknown = sorted(set(kwargs) - set(SCAN_ARGS))
        if unknown:
            raise LmcriticError(f"unknown lmcritic marker argument(s) {', '.join(unknown)}",
                                f"known: {', '.join(SCAN_ARGS)}")
        marked = kwargs.pop("model", None)
        model = self.model or (model_fixture if model_fixture is not None else marked)
        key = _key(kwargs, model)
        return self._once(key, lambda: _critique(kwargs, model, self.store))

    def _once(self, key: str, make: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]


def _critique(kwargs: dict[str, Any], model: object, store: str | None) -> Any:
    import lmcritic

    spec = kwargs.pop("spec", None)
    if spec is not None:
        return lmcritic.run(spec, model=model, store=store, progress=False, **_only(kwargs, ("options", "name")))
    kwargs.setdefault("stages", False)
    return lmcritic.scan(model, store=store, progress=False, **kwargs)


def _load(run: str, store: str | None) -> Any:
    from lmcritic.results import Results

    return Results.load(run, store)


def _only(kwargs: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    extra = sorted(set(kwargs) - set(names))
    if extra:
        raise LmcriticError(f"lmcritic marker: spec= takes no {', '.join(extra)} (put them in the spec)")
    return kwargs


def _key(kwargs: dict[str, Any], model: object) -> str:
    """Same marker arguments and same model: same run. A model object counts by identity."""
    from lmcritic._serde import canonical_json

    label = model if model is None or isinstance(model, str) else f"object:{id(model)}"
    return canonical_json({"marker": kwargs, "model": label})
