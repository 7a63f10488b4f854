"""Example projects that ship with trivet (used by ``trivet quickstart``)."""
