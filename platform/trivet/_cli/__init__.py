"""The platform's CLI sub-apps (auth, project, models, artifacts, lineage, audit)."""
