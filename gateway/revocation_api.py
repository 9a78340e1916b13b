"""The revocation endpoints of the HTTP API (API key required, like all of ``/api``).

    GET    /api/revocations               what is revoked now
    POST   /api/revocations/tokens        {"jti": ID, "expires": EXP}: revoke one token
    POST   /api/revocations/users         {"sub": USER, "issued_before": T}: a user's tokens
    DELETE /api/revocations/users/{sub}   lift a user's revocation
    POST   /api/users/{sub}/disconnect    cut a user off now, on every gateway

Disconnecting a user is revoking every token of theirs issued until now: each gateway
closes the user's connections with 4501 within a second, and the user needs a token
issued afterwards to come back. The store and its rules are :mod:`gateway.revocation`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.routing import Route

from gateway.api import Api, _body, _endpoint, _Fail, _limit
from gateway.api_schema import (
    RevocationList,
    RevokedToken,
    RevokedUser,
    RevokeToken,
    RevokeUser,
    UserRevoked,
)
from gateway.node import node_of
from gateway.revocation import Revocations, RevocationStoreUnavailable

__all__ = ["routes"]

T = TypeVar("T")


def _revocations(request: Request) -> Revocations:
    revocations: Revocations = node_of(request).security.revocations
    return revocations


async def _stored(call: Awaitable[T]) -> T:
    """Await a revocation store call; a store that cannot be reached answers 503."""
    try:
        return await call
    except RevocationStoreUnavailable as exc:
        raise _Fail(503, "unavailable", "revocation store unavailable; try again") from exc


def _user(request: Request) -> str:
    user: str = request.path_params["sub"]
    if not 1 <= len(user) <= 256:
        raise _Fail(422, "invalid_user", "a user (sub) is 1-256 characters")
    return user


async def _list(request: Request, api: Api) -> Any:
    revocations = _revocations(request)
    await _stored(revocations.load())
    return RevocationList(
        tokens=[RevokedToken(jti=j, expires=e) for j, e in sorted(revocations.tokens.items())],
        users=[RevokedUser(sub=u, issued_before=t) for u, t in sorted(revocations.users.items())],
    )


async def _revoke_token(request: Request, api: Api) -> Any:
    body = await _body(request, RevokeToken, _limit(api))
    expires = await _stored(_revocations(request).revoke_token(body.jti, body.expires))
    return RevokedToken(jti=body.jti, expires=expires)


async def _revoke_user(request: Request, api: Api) -> Any:
    body = await _body(request, RevokeUser, _limit(api))
    before = await _stored(_revocations(request).revoke_user(body.sub, body.issued_before))
    return RevokedUser(sub=body.sub, issued_before=before)


async def _forget_user(request: Request, api: Api) -> Any:
    user = _user(request)
    removed = await _stored(_revocations(request).forget_user(user))
    if not removed:
        raise _Fail(404, "not_revoked", "this user has no revocation")
    return UserRevoked(sub=user, revoked=False)


async def _disconnect(request: Request, api: Api) -> Any:
    user = _user(request)
    before = await _stored(_revocations(request).revoke_user(user, None))
    return RevokedUser(sub=user, issued_before=before)


routes = [
    Route("/api/revocations", _endpoint(_list), methods=["GET"]),
    Route("/api/revocations/tokens", _endpoint(_revoke_token), methods=["POST"]),
    Route("/api/revocations/users", _endpoint(_revoke_user), methods=["POST"]),
    Route("/api/revocations/users/{sub}", _endpoint(_forget_user), methods=["DELETE"]),
    Route("/api/users/{sub}/disconnect", _endpoint(_disconnect), methods=["POST"]),
]
"""Mounted by :func:`gateway.app.create_app`."""
