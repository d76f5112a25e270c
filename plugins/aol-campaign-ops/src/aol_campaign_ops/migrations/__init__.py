"""aol-campaign-ops' Alembic revisions, applied by ``aol db upgrade`` (``aol_migrations``)."""
