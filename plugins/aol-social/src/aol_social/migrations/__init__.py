"""aol-social's Alembic revisions, applied by ``aol db upgrade`` (``aol_migrations``)."""
