"""The selection step of the Azure ML double-cv pipeline: ``python -m remote.training_select``.

Reads every finished trial of one double-cv run from MLflow (each trial logged its own fold
files as artifacts, tagged with the run id: :func:`remote.tracking.fetch_cv_trials`), picks the
model with :func:`core.training.run.select_model_file` (the same code as ``neurohsi train-select``)
and writes it. Runs in the training image; prints one JSON line; a bad input is one line on
stderr and exit 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from core.errors import NeuroHSIError, one_line


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m remote.training_select", description=__doc__.split("\n\n")[0])
    p.add_argument("--from-mlflow", required=True, metavar="CV_RUN", help="the double-cv run whose trials to read")
    p.add_argument("-o", "--output", type=Path, required=True, help="model file to write (.safetensors)")
    p.add_argument("--folds", type=int, required=True, help="K of the K x K double cross-validation")
    p.add_argument("--mlflow-uri", help="tracking URI (default: $MLFLOW_TRACKING_URI, set by Azure ML)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from core.training.run import select_model_file
    from remote import tracking

    try:
        uri = args.mlflow_uri or os.environ.get(tracking.TRACKING_URI_ENV)
        if not uri:
            raise ValueError("--from-mlflow needs --mlflow-uri or $MLFLOW_TRACKING_URI")
        with tempfile.TemporaryDirectory() as tmp:
            folders = tracking.fetch_cv_trials(uri, args.from_mlflow, tmp)
            print(json.dumps(select_model_file(folders, args.output, args.folds)))
    except (NeuroHSIError, ValueError, OSError) as exc:
        print(f"neurohsi: {one_line(exc)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
