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

from typing import Any

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


def _revocations(request: Request) -> Revocations:
    revocations: Revocations = node_of(request).security.revocations
    return revocations


def _unavailable(exc: RevocationStoreUnavailable) -> _Fail:
    return _Fail(503, "unavailable", "revocation store unavailable; try again")


def _user(request: Request) -> str:
    user: str = request.path_params["sub"]
    if not 1 <= len(user) <= 256:
        raise _Fail(422, "invalid_user", "a user (sub) is 1-256 characters")
    return user


async def _list(request: Request, api: Api) -> Any:
    revocations = _revocations(request)
    try:
        await revocations.load()
    except RevocationStoreUnavailable as exc:
        raise _unavailable(exc) from exc
    return RevocationList(
        tokens=[RevokedToken(jti=j, expires=e) for j, e in sorted(revocations.tokens.items())],
        users=[RevokedUser(sub=u, issued_before=t) for u, t in sorted(revocations.users.items())],
    )


async def _revoke_token(request: Request, api: Api) -> Any:
    body = await _body(request, RevokeToken, _limit(api))
    try:
        expires = await _revocations(request).revoke_token(body.jti, body.expires)
    except RevocationStoreUnavailable as exc:
        raise _unavailable(exc) from exc
    return RevokedToken(jti=body.jti, expires=expires)


async def _revoke_user(request: Request, api: Api) -> Any:
    body = await _body(request, RevokeUser, _limit(api))
    try:
        before = await _revocations(request).revoke_user(body.sub, body.issued_before)
    except RevocationStoreUnavailable as exc:
        raise _unavailable(exc) from exc
    return RevokedUser(sub=body.sub, issued_before=before)


async def _forget_user(request: Request, api: Api) -> Any:
    user = _user(request)
    try:
        removed = await _revocations(request).forget_user(user)
    except RevocationStoreUnavailable as exc:
        raise _unavailable(exc) from exc
    if not removed:
        raise _Fail(404, "not_revoked", "this user has no revocation")
    return UserRevoked(sub=user, revoked=False)


async def _disconnect(request: Request, api: Api) -> Any:
    user = _user(request)
    try:
        before = await _revocations(request).revoke_user(user, None)
    except RevocationStoreUnavailable as exc:
        raise _unavailable(exc) from exc
    return RevokedUser(sub=user, issued_before=before)


routes = [
    Route("/api/revocations", _endpoint(_list), methods=["GET"]),
    Route("/api/revocations/tokens", _endpoint(_revoke_token), methods=["POST"]),
    Route("/api/revocations/users", _endpoint(_revoke_user), methods=["POST"]),
    Route("/api/revocations/users/{sub}", _endpoint(_forget_user), methods=["DELETE"]),
    Route("/api/users/{sub}/disconnect", _endpoint(_disconnect), methods=["POST"]),
]
"""Mounted by :func:`gateway.app.create_app`."""
