"""`report_to: mlflow`: the tracking store MLflow will open, checked before anything loads.

MLflow opens its store when training starts. Unset, MLflow 3 chooses `sqlite:///mlflow.db`, which needs SQLAlchemy
(mlflow-skinny, lmforge's `tracking` extra, has none); a `file:` store needs MLFLOW_ALLOW_FILE_STORE=true from
MLflow 3 on. Both failed after the model had loaded, as tracebacks from inside MLflow.
"""

import os
from importlib.util import find_spec
from urllib.parse import urlparse

DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
SETTINGS = ("set MLFLOW_TRACKING_URI to an MLflow server (http://HOST:5000) or a folder (file:./mlruns, with "
            "MLFLOW_ALLOW_FILE_STORE=true)")


def mlflow_store_problem() -> str | None:
    import mlflow
    from packaging.version import Version

    uri = mlflow.get_tracking_uri()  # MLFLOW_TRACKING_URI, else MLflow's default
    scheme = urlparse(uri).scheme.split("+")[0]
    if scheme in DATABASE_SCHEMES and find_spec("sqlalchemy") is None:
        return (f"`report_to: mlflow` logs to {uri} (MLflow's default when MLFLOW_TRACKING_URI is unset), a database "
                f"store that needs SQLAlchemy, which mlflow-skinny lacks: {SETTINGS}, or pip install mlflow")
    file_store_allowed = os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() in ("1", "true")
    if scheme in ("", "file") and Version(mlflow.__version__).major >= 3 and not file_store_allowed:
        return (f"`report_to: mlflow` logs to the folder {uri}, which MLflow {mlflow.__version__} refuses unless "
                "MLFLOW_ALLOW_FILE_STORE=true is set (its file store is in maintenance mode): set it, or point "
                "MLFLOW_TRACKING_URI at an MLflow server")
    return None
