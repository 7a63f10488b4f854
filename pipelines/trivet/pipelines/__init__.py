"""trivet.pipelines: Python-defined ML pipelines with caching, gates and lineage.

Being built; see issue #5.
"""

__all__: list[str] = []
