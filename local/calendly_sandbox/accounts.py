"""Users, their memberships in the organization, and the access tokens they hold."""

from __future__ import annotations

from .config import Role, TokenSpec, TokenState
from .models import AccessToken, Membership, User
from .sample_data import FIRST_NAMES, LAST_NAMES, TIMEZONES
from .uris import reference_uuid
from .world import World


class Accounts(World):
    def add_user(self, role: Role, name: str | None = None, email: str | None = None) -> User:
        with self.lock:
            index = len(self.users) + 1
            if name is None:
                name = f"{self._data_random.choice(FIRST_NAMES)} {self._data_random.choice(LAST_NAMES)}"
            slug = f"{name.lower().replace(' ', '-')}-{index}"
            email = email or f"{slug}@example.com"
            created = self.clock.now()
            user = User(
                uuid=self.new_uuid(),
                name=name,
                slug=slug,
                email=email,
                timezone=self._data_random.choice(TIMEZONES),
                created_at=created,
                updated_at=created,
            )
            self.users[user.uuid] = user
            self.memberships[user.uuid] = Membership(self.new_uuid(), user.uuid, role, created, created)
            return user

    def add_token(self, spec: TokenSpec) -> AccessToken:
        with self.lock:
            if spec.user is not None:
                user = self.user_by_reference(spec.user)
                if user is None:
                    raise KeyError(f"unknown user {spec.user!r}")
                role = self.memberships[user.uuid].role
                if spec.role is not None and spec.role != role:
                    raise ValueError(f"user {spec.user!r} is {role}, not {spec.role}")
            else:
                user = self.add_user(spec.role or "owner", spec.name, spec.email)
            value = f"sandbox_pat_{self._id_random.getrandbits(192):048x}"
            token = AccessToken(value, user.uuid, spec.plan, spec.effective_scopes(), spec.state)
            self.tokens[value] = token
            return token

    def set_token_state(self, value: str, state: TokenState) -> None:
        with self.lock:
            self.tokens[value].state = state

    def user_by_reference(self, reference: str) -> User | None:
        user_uuid = reference_uuid(reference, "users")
        return self.users.get(user_uuid) if user_uuid else None

    def role_of(self, user_uuid: str) -> Role:
        return self.memberships[user_uuid].role

    def is_admin(self, user_uuid: str) -> bool:
        return self.role_of(user_uuid) in ("owner", "admin")

    def is_own_organization(self, reference: str) -> bool:
        return reference_uuid(reference, "organizations") == self.organization.uuid
