"""trivet.clarify: bias metrics, explanations and fairness reports (being built; see issue #4)."""

__all__: list[str] = []
