"""The model registry (``session.registry``): model groups, immutable versions, approvals.

Resources: a group is ``<project>/models/<name>``, a version
``<project>/models/<name>/<version>``. Versions are numbered 1, 2, 3… per group and
never change once created: no method alters a version's model, parameters, metrics,
signature or digests. Only its approval status moves, once, from
``PendingManualApproval`` to ``Approved`` or ``Rejected``, with who decided, when and
why. A version that failed its fairness gate can never be approved, and aliases
(``production``, ``champion``…) point at approved versions only.

Actions: ``model:register`` to create a group or a version (the creator of a group gets
an explicit ``maintainer`` grant on ``<group>/*``: everything but approving),
``model:describe`` to see groups and versions, ``model:read`` to load a model,
``model:approve`` to approve, reject and move aliases, ``model:delete`` to delete a
group. Approving is a person's decision: a service principal (a pipeline) never
approves. With the workspace policy ``four_eyes``, nobody approves a version
they registered (directly or through a service principal acting on their behalf).
"""

from trivet.platform.registry._records import ApprovalStatus, GateStatus, ModelGroup, ModelVersion
from trivet.platform.registry._registry import ModelRegistry

__all__ = ["ApprovalStatus", "GateStatus", "ModelGroup", "ModelRegistry", "ModelVersion"]
