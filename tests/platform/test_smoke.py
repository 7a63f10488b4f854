from __future__ import annotations

import trivet


def test_admin_owns_workspace(admin: trivet.Session, catalog_backend: str) -> None:
    assert admin.identity.whoami().name
    assert admin.authorize("model:approve", "default/models/m").allowed
