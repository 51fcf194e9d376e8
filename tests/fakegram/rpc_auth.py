"""RPC handlers of ``auth.*`` and the ``account.*`` methods of passwords and sessions.

The rules live in :mod:`.logins`; a session that has not logged in may call only
:data:`UNAUTHORIZED` (core.telegram.org/api/auth), anything else is 401 AUTH_KEY_UNREGISTERED.
"""

from __future__ import annotations

from telethon.tl import TLObject, functions, types

from .records import RpcFail
from .rpc import RpcContext, handles

# What a session without a logged-in account may call: the config and the login methods.
UNAUTHORIZED = frozenset(
    {
        functions.help.GetConfigRequest,
        functions.help.GetNearestDcRequest,
        functions.auth.SendCodeRequest,
        functions.auth.SignInRequest,
        functions.auth.CheckPasswordRequest,
        functions.auth.ExportLoginTokenRequest,
        functions.auth.ImportLoginTokenRequest,
        functions.auth.ImportAuthorizationRequest,
        functions.account.GetPasswordRequest,
    }
)


def _logged_in(ctx: RpcContext):
    if ctx.user is None:
        raise RpcFail(401, "AUTH_KEY_UNREGISTERED")
    return ctx.user


@handles(functions.auth.SendCodeRequest)
def send_code(ctx: RpcContext, request: functions.auth.SendCodeRequest) -> TLObject:
    return ctx.logins.send_code(request.phone_number, request.api_id, request.api_hash, ctx.dc_id)


@handles(functions.auth.SignInRequest)
def sign_in(ctx: RpcContext, request: functions.auth.SignInRequest) -> TLObject:
    return ctx.logins.sign_in(ctx.auth, request.phone_number, request.phone_code_hash, request.phone_code)


@handles(functions.account.GetPasswordRequest)
def get_password(ctx: RpcContext, request: TLObject) -> types.account.Password:
    # Before login only the account whose password is pending may be asked about.
    user = ctx.user or (ctx.world.users.get(ctx.auth.password_pending) if ctx.auth.password_pending else None)
    if user is None:
        raise RpcFail(401, "AUTH_KEY_UNREGISTERED")
    return ctx.logins.password_info(user)


@handles(functions.auth.CheckPasswordRequest)
def check_password(ctx: RpcContext, request: functions.auth.CheckPasswordRequest) -> TLObject:
    return ctx.logins.check_password(ctx.auth, request.password)


@handles(functions.auth.ExportLoginTokenRequest)
def export_login_token(ctx: RpcContext, request: functions.auth.ExportLoginTokenRequest) -> TLObject:
    return ctx.logins.export_token(ctx.auth, request.api_id, request.api_hash)


@handles(functions.auth.ImportLoginTokenRequest)
def import_login_token(ctx: RpcContext, request: functions.auth.ImportLoginTokenRequest) -> TLObject:
    return ctx.logins.import_token(ctx.auth, request.token)


@handles(functions.auth.ExportAuthorizationRequest)
def export_authorization(ctx: RpcContext, request: functions.auth.ExportAuthorizationRequest) -> TLObject:
    return ctx.logins.export_authorization(_logged_in(ctx), ctx.auth, request.dc_id)


@handles(functions.auth.ImportAuthorizationRequest)
def import_authorization(ctx: RpcContext, request: functions.auth.ImportAuthorizationRequest) -> TLObject:
    return ctx.logins.import_authorization(ctx.auth, request.id, request.bytes)


@handles(functions.auth.AcceptLoginTokenRequest)
def accept_login_token(ctx: RpcContext, request: functions.auth.AcceptLoginTokenRequest) -> TLObject:
    return ctx.logins.accept_token(_logged_in(ctx), request.token)


@handles(functions.account.GetAuthorizationsRequest)
def get_authorizations(ctx: RpcContext, request: TLObject) -> TLObject:
    return ctx.logins.authorizations(_logged_in(ctx), ctx.auth)


@handles(functions.account.ResetAuthorizationRequest)
def reset_authorization(ctx: RpcContext, request: functions.account.ResetAuthorizationRequest) -> bool:
    return ctx.logins.reset_authorization(_logged_in(ctx), ctx.auth, request.hash)
