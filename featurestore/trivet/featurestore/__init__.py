"""trivet.featurestore: feature groups, ingestion, online/offline stores, training sets.

Being built; see issue #3.
"""

__all__: list[str] = []
