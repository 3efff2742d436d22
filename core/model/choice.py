"""Which model to classify with: the one rule and the one set of messages.

Order: the model given explicitly (``--model``, the GUI's command-line override,
the service's ``NEUROHSI_MODEL_PATH``), else the configured one (the service's model
folder), else the installed one (:mod:`core.model.installed`: the store in the models
folder that the retraining dialog and ``neurohsi model`` change), else the bundled
demo model when ``allow_demo``. An installed model whose file is gone is an error,
never a silent fall-back to the demo model.
A named file that does not exist is an error even when the demo model is there:
silently classifying with another model than the one asked for would lie about
where a map came from. Every message ends with :data:`HOW_TO_FIX`.

:func:`resolve_model` loads the chosen file once per file version
(path, size, mtime) and shares it between threads.
"""
from __future__ import annotations

import threading
from pathlib import Path

from core.errors import ModelFileError
from core.model.files import LoadedModel, load_model

HOW_TO_FIX = ("install one (Labels ▸ Retrain, Settings ▸ Model or `neurohsi model install FILE`), "
              "pass --model, or run `make demo-model`")
MSG_EXPLICIT_MISSING = f"model file not found; {HOW_TO_FIX}"
MSG_CONFIGURED_MISSING = f"model file chosen in the settings not found; {HOW_TO_FIX}"
MSG_INSTALLED_MISSING = f"installed model file not found (history.json names it); {HOW_TO_FIX}"
MSG_DEMO_MISSING = f"no model chosen and the demo model is missing; {HOW_TO_FIX}"
MSG_NONE_CHOSEN = f"no model chosen; {HOW_TO_FIX}"


def _given(value: str | Path | None) -> Path | None:
    if value is None:
        return None
    text = str(value).strip()
    return Path(text).expanduser() if text else None


def resolve_model_path(
    explicit: str | Path | None, configured: str | Path | None = None, *, allow_demo: bool = True,
    models_dir: str | Path | None = None,
) -> Path:
    """The model file to use (see the module docstring); ``ModelFileError`` saying how to fix it otherwise.

    Blank strings count as not given. ``models_dir``: the store to read (default
    :func:`core.model.installed.default_models_dir`).
    """
    path = _given(explicit)
    if path is not None:
        if not path.is_file():
            raise ModelFileError(path, MSG_EXPLICIT_MISSING)
        return path
    path = _given(configured)
    if path is not None:
        if not path.is_file():
            raise ModelFileError(path, MSG_CONFIGURED_MISSING)
        return path
    from core.model.installed import ModelStore

    installed = ModelStore(models_dir).current()
    if installed is not None and installed.path:
        path = Path(installed.path)
        if not path.is_file():
            raise ModelFileError(path, MSG_INSTALLED_MISSING)
        return path
    if not allow_demo:
        raise ModelFileError(None, MSG_NONE_CHOSEN)
    import resources  # looked up at call time so tests can point it elsewhere

    demo = resources.DEMO_MODEL_PATH
    if not Path(demo).is_file():
        raise ModelFileError(demo, MSG_DEMO_MISSING)
    return Path(demo)


_cache: dict[tuple[str, int, int], LoadedModel] = {}
_lock = threading.Lock()


def load_model_cached(path: str | Path) -> LoadedModel:
    """:func:`core.model.files.load_model` once per file version (resolved path, size, mtime_ns).

    Thread-safe: concurrent callers wait for one load. Only the latest model is
    kept (the app and the service use one model at a time).
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        raise ModelFileError(path, MSG_EXPLICIT_MISSING) from None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _lock:
        model = _cache.get(key)
        if model is None:
            model = load_model(path)
            _cache.clear()
            _cache[key] = model
        return model


def resolve_model(
    explicit: str | Path | None, configured: str | Path | None = None, *, allow_demo: bool = True,
    models_dir: str | Path | None = None,
) -> LoadedModel:
    """Load the model :func:`resolve_model_path` chooses (cached per file version)."""
    return load_model_cached(resolve_model_path(explicit, configured, allow_demo=allow_demo, models_dir=models_dir))
