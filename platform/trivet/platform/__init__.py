"""The shared platform layer: workspace, catalog, identity, permissions, artifacts."""
