"""The person or key behind a request, and what roles and scopes exist."""

from __future__ import annotations

from dataclasses import dataclass

from tsdb.metrics import ACCESS_LEVELS

ROLES = ("viewer", "analyst", "editor", "operator", "admin")
SCOPES = ("ingest", "read", "admin")


@dataclass(frozen=True)
class Identity:
    """The person or key behind a request."""

    name: str
    role: str  # viewer, analyst, editor, operator, admin; a key counts as the role its scopes give
    access: tuple[str, ...] = ACCESS_LEVELS
    scopes: tuple[str, ...] = ()
    kind: str = "user"  # user, key or open (development without auth)

    def at_least(self, role: str) -> bool:
        """Return whether this identity's role is ``role`` or above."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def sees(self, access_level: str | None) -> bool:
        """Return whether this identity may read data of an access level (None: admins only)."""
        return self.role == "admin" or (access_level is not None and access_level in self.access)

    @property
    def sees_everything(self) -> bool:
        return self.role == "admin"


OPEN = Identity("anonymous", "admin", ACCESS_LEVELS, SCOPES, "open")  # development without auth: anyone
NOBODY = Identity("anonymous", "viewer", (), (), "anonymous")  # not (yet) identified: reads nothing
