"""What a ``--workers`` fork server imports for the MLflow tracker, so workers start warm.

Declared in pyproject.toml under the entry-point group ``codenas.preload``
(:data:`codenas.search.forkserver.PRELOAD_GROUP`): the search layer finds it by name and never
imports MLflow itself. The tracker imports these lazily, on its first use; a worker forked from
the server has them already (MLflow's client, its SQL store and the Alembic machinery it
checks a database's schema with: ~1.5 s on two cores).
"""

import mlflow.store.tracking.sqlalchemy_store
import mlflow.tracking  # noqa: F401
