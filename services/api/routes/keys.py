"""API keys: admins create keys of any role; a unit admin creates unit-admin and
service keys within its own subtree. Keys are shown once, at creation or rotation.

Key routes accept no ``Idempotency-Key``: a replay would have to hand the secret
out again, so the store never keeps it. Retrying a lost creation creates a second
key; revoke the one you did not receive.
"""

from __future__ import annotations

from uuid import UUID

import structlog
from fastapi import APIRouter, Response

from domain.errors import ConflictError, NotFoundError
from services import queries
from services.api.deps import KeysDep, PlatformDep, PrincipalDep
from services.api.problems import ProblemError, problems
from services.api.schemas import KeyCreateBody, KeyCreated, KeyView
from services.bootstrap import Platform
from services.keys import KeyInfo, KeyStore, RevokedKeyError, UnknownKeyError, parse_token
from services.principals import SCOPED_ROLES, ForbiddenError, Principal, Role

router = APIRouter(prefix="/v1/keys", tags=["keys"])
log = structlog.get_logger(__name__)


def _ensure_may_manage(
    platform: Platform, principal: Principal, role: Role, unit_id: UUID | None
) -> None:
    """Admins manage every key; a unit admin manages scoped keys within its subtree."""
    if principal.role == Role.ADMIN:
        return
    if principal.role != Role.UNIT_ADMIN:
        raise ForbiddenError("only admins and unit admins manage keys")
    if role not in SCOPED_ROLES:
        raise ForbiddenError("a unit admin manages only unit_admin and service keys")
    if unit_id is None:
        raise ForbiddenError("outside your unit's subtree")
    principal.ensure_can_write(queries.unit_lineage(platform.app, unit_id))


def _key(keys: KeyStore, key_id: str) -> KeyInfo:
    try:
        return keys.get(key_id)
    except UnknownKeyError:
        raise NotFoundError(f"key {key_id} not found", code="key-not-found") from None


def _created(keys: KeyStore, token: str, response: Response) -> KeyCreated:
    parsed = parse_token(token)
    assert parsed is not None  # noqa: S101 - the store issued this token
    key_id = parsed[0]
    info = keys.get(key_id)
    response.headers["Location"] = f"/v1/keys/{key_id}"
    response.headers["Cache-Control"] = "no-store"
    return KeyCreated(**KeyView.of(info).model_dump(), key=token)


@router.post(
    "",
    status_code=201,
    summary="Create an API key (the secret is shown once)",
    responses=problems(403, 404),
)
def create_key(
    body: KeyCreateBody,
    platform: PlatformDep,
    keys: KeysDep,
    principal: PrincipalDep,
    response: Response,
) -> KeyCreated:
    if (body.role in SCOPED_ROLES) != (body.unit_id is not None):
        raise ProblemError(
            422,
            "bad-key-scope",
            "unit_admin and service keys need a unit_id; admin and auditor keys take none",
        )
    if body.unit_id is not None:
        queries.unit_lineage(platform.app, body.unit_id)  # 404 when the unit does not exist
    _ensure_may_manage(platform, principal, body.role, body.unit_id)
    principal_of_key, token = keys.create(
        body.role, body.name, body.unit_id, created_by=principal.actor
    )
    log.info(
        "keys.created",
        key_id=principal_of_key.key_id,
        role=body.role.value,
        unit_id=str(body.unit_id) if body.unit_id else None,
    )
    return _created(keys, token, response)


@router.get("", summary="List the keys you manage (never their secrets)", responses=problems(403))
def list_keys(platform: PlatformDep, keys: KeysDep, principal: PrincipalDep) -> list[KeyView]:
    if principal.role == Role.ADMIN:
        return [KeyView.of(k) for k in keys.list()]
    if principal.role != Role.UNIT_ADMIN:
        raise ForbiddenError("only admins and unit admins manage keys")
    visible = []
    for k in keys.list():
        if k.unit_id is None:
            continue
        try:
            lineage = queries.unit_lineage(platform.app, k.unit_id)
        except NotFoundError:
            continue
        if principal.unit_id in lineage:
            visible.append(KeyView.of(k))
    return visible


@router.get("/{key_id}", summary="One key (never its secret)", responses=problems(403, 404))
def get_key(key_id: str, platform: PlatformDep, keys: KeysDep, principal: PrincipalDep) -> KeyView:
    info = _key(keys, key_id)
    _ensure_may_manage(platform, principal, info.role, info.unit_id)
    return KeyView.of(info)


@router.delete(
    "/{key_id}",
    summary="Revoke a key (effective at once here, within seconds in other workers)",
    responses=problems(403, 404),
)
def revoke_key(
    key_id: str, platform: PlatformDep, keys: KeysDep, principal: PrincipalDep
) -> KeyView:
    info = _key(keys, key_id)
    _ensure_may_manage(platform, principal, info.role, info.unit_id)
    revoked = keys.revoke(key_id, revoked_by=principal.actor)
    log.info("keys.revoked", key_id=key_id)
    return KeyView.of(revoked)


@router.post(
    "/{key_id}/rotate",
    status_code=201,
    summary="Replace a key with a new one of the same role and unit; the old one is revoked",
    responses=problems(403, 404, 409),
)
def rotate_key(
    key_id: str,
    platform: PlatformDep,
    keys: KeysDep,
    principal: PrincipalDep,
    response: Response,
) -> KeyCreated:
    info = _key(keys, key_id)
    _ensure_may_manage(platform, principal, info.role, info.unit_id)
    try:
        token = keys.rotate(key_id, rotated_by=principal.actor)
    except RevokedKeyError:
        raise ConflictError(f"key {key_id} is revoked", code="key-revoked") from None
    log.info("keys.rotated", key_id=key_id)
    return _created(keys, token, response)
