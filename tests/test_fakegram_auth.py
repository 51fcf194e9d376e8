"""fakegram self-tests: the auth key handshake, logging in (code, 2FA, QR) and sessions, each as
tests/fakegram/handshake.py and logins.py cite Telegram's documentation for it."""

from __future__ import annotations

import pytest
from telethon import errors, events, functions, types

from tests.fakegram import Fakegram
from tests.fakegram.handshake import FINGERPRINT, Handshake, HandshakeError
from tests.fakegram.logins import SERVICE_USER_ID
from tests.fakegram.testing import collect, next_event

pytestmark = [pytest.mark.asyncio(loop_scope="function"), pytest.mark.wire]
PHONE = "447700900123"


def send_code(phone: str = PHONE, api_id: int = 1, api_hash: str = "fakegram"):
    return functions.auth.SendCodeRequest(phone, api_id, api_hash, types.CodeSettings())


async def test_a_fresh_install_creates_a_key_that_is_not_logged_in(fakegram: Fakegram) -> None:
    known = set(fakegram._auths)
    client = fakegram.fresh_client()
    await client.connect()  # req_pq_multi, req_DH_params, set_client_DH_params
    (new,) = set(fakegram._auths) - known
    assert new == client.session.auth_key.key_id and fakegram._auths[new].user_id is None
    assert (await client(functions.help.GetConfigRequest())).this_dc == 2  # allowed before login
    with pytest.raises(errors.AuthKeyUnregisteredError):  # 401: anything else is refused
        await client(functions.updates.GetStateRequest())
    assert await client.get_me() is None


async def test_the_handshake_refuses_what_telegram_refuses() -> None:
    handshake = Handshake()
    res_pq = handshake.answer(functions.ReqPqMultiRequest(nonce=7))
    assert res_pq.nonce == 7 and res_pq.server_public_key_fingerprints == [FINGERPRINT]
    pq = int.from_bytes(res_pq.pq, "big")
    assert pq.bit_length() <= 64  # "a natural number pq ... the product of two primes"
    with pytest.raises(HandshakeError, match="factors"):
        handshake.answer(
            functions.ReqDHParamsRequest(7, res_pq.server_nonce, b"\x01", res_pq.pq, FINGERPRINT, bytes(256))
        )
    with pytest.raises(HandshakeError, match="nonce"):
        handshake.answer(functions.SetClientDHParamsRequest(8, res_pq.server_nonce, bytes(32)))
    with pytest.raises(HandshakeError, match="without an auth key"):
        Handshake().answer(functions.help.GetConfigRequest())


async def test_phone_code_errors(fakegram: Fakegram) -> None:
    fakegram.create_user("Alice", "alice", phone=PHONE)
    client = fakegram.fresh_client()
    await client.connect()
    with pytest.raises(errors.PhoneNumberInvalidError):
        await client(send_code("12345"))
    with pytest.raises(errors.ApiIdInvalidError):
        await client(send_code(api_hash="stolen"))
    first = await client(send_code("+44 (7700) 900-123"))  # any international spelling
    assert isinstance(first.type, types.auth.SentCodeTypeSms)  # no app logged in: by SMS
    assert fakegram.login_code(PHONE) in fakegram.logins.sms[PHONE][-1]
    with pytest.raises(errors.PhoneCodeInvalidError):
        await client(functions.auth.SignInRequest(PHONE, first.phone_code_hash, "00000x"))
    second = await client(send_code())  # a new code supersedes the first
    with pytest.raises(errors.PhoneCodeExpiredError):
        await client(functions.auth.SignInRequest(PHONE, first.phone_code_hash, fakegram.login_code(PHONE)))
    fakegram.expire_login_codes()
    with pytest.raises(errors.PhoneCodeExpiredError):
        await client(functions.auth.SignInRequest(PHONE, second.phone_code_hash, fakegram.login_code(PHONE)))
    third = await client(send_code())
    code = fakegram.login_code(PHONE)
    result = await client(functions.auth.SignInRequest(PHONE, third.phone_code_hash, code))
    assert result.user.first_name == "Alice" and result.user.is_self
    with pytest.raises(errors.PhoneCodeExpiredError):  # a code logs in once
        await client(functions.auth.SignInRequest(PHONE, third.phone_code_hash, code))


async def test_an_unknown_number_is_asked_to_sign_up(fakegram: Fakegram) -> None:
    client = fakegram.fresh_client()
    await client.connect()
    sent = await client(send_code("15550001111"))
    result = await client(
        functions.auth.SignInRequest("15550001111", sent.phone_code_hash, fakegram.login_code("15550001111"))
    )
    assert isinstance(result, types.auth.AuthorizationSignUpRequired)


async def test_the_code_goes_to_the_logged_in_app(fakegram: Fakegram) -> None:
    phone = await fakegram.new_user("Alice", "alice")
    alice = fakegram.user_of(phone)
    alice.phone = PHONE
    inbox = collect(phone, events.NewMessage(incoming=True))
    await phone.get_me()
    await phone(functions.updates.GetStateRequest())
    client = fakegram.fresh_client()
    await client.connect()
    sent = await client(send_code())
    assert sent.type == types.auth.SentCodeTypeApp(length=5)
    message = await next_event(inbox)
    assert message.sender_id == SERVICE_USER_ID and fakegram.login_code(PHONE) in message.raw_text


async def test_two_step_verification_is_srp(fakegram: Fakegram) -> None:
    alice = fakegram.create_user("Alice", "alice", phone=PHONE)
    fakegram.set_password(alice, "hunter2", hint="ha")
    assert "hunter2" not in repr(fakegram.logins.passwords)  # only salts and the verifier
    client = fakegram.fresh_client()
    await client.connect()
    with pytest.raises(errors.AuthKeyUnregisteredError):  # no code yet: no password to check
        await client(functions.account.GetPasswordRequest())
    sent = await client(send_code())
    with pytest.raises(errors.SessionPasswordNeededError):
        await client(functions.auth.SignInRequest(PHONE, sent.phone_code_hash, fakegram.login_code(PHONE)))
    password = await client(functions.account.GetPasswordRequest())
    algo = password.current_algo
    assert password.has_password and password.hint == "ha" and algo.g == 3 and len(algo.p) == 256
    from telethon.password import compute_check

    with pytest.raises(errors.PasswordHashInvalidError):
        await client(functions.auth.CheckPasswordRequest(compute_check(password, "hunter3")))
    with pytest.raises(errors.SrpIdInvalidError):  # each srp_id is good for one try
        await client(functions.auth.CheckPasswordRequest(compute_check(password, "hunter2")))
    with pytest.raises(errors.AuthKeyUnregisteredError):
        await client(functions.updates.GetStateRequest())  # still not logged in
    result = await client(
        functions.auth.CheckPasswordRequest(
            compute_check(await client(functions.account.GetPasswordRequest()), "hunter2")
        )
    )
    assert result.user.id == alice.id
    await client(functions.updates.GetStateRequest())


async def test_qr_login_tokens(fakegram: Fakegram) -> None:
    phone = await fakegram.new_user("Alice", "alice")
    client = fakegram.fresh_client()
    await client.connect()
    scans = collect(client, events.Raw(types.UpdateLoginToken))
    with pytest.raises(errors.ApiIdInvalidError):
        await client(functions.auth.ExportLoginTokenRequest(1, "stolen", []))
    old = await client(functions.auth.ExportLoginTokenRequest(1, "fakegram", []))
    assert isinstance(old, types.auth.LoginToken)
    new = await client(functions.auth.ExportLoginTokenRequest(1, "fakegram", []))  # replaces the old
    with pytest.raises(errors.AuthTokenExpiredError):
        await phone(functions.auth.AcceptLoginTokenRequest(old.token))
    with pytest.raises(errors.AuthTokenInvalidError):
        await phone(functions.auth.AcceptLoginTokenRequest(b"nonsense"))
    authorization = await phone(functions.auth.AcceptLoginTokenRequest(new.token))
    assert authorization.api_id == 1
    await next_event(scans)  # updateLoginToken to the session that exported the token
    with pytest.raises(errors.AuthTokenAlreadyAcceptedError):
        await phone(functions.auth.AcceptLoginTokenRequest(new.token))
    done = await client(functions.auth.ExportLoginTokenRequest(1, "fakegram", []))  # the second call
    assert isinstance(done, types.auth.LoginTokenSuccess)
    assert done.authorization.user.id == fakegram.user_of(phone).id
    fakegram.expire_login_tokens()  # nothing left to accept


async def test_terminating_a_session(fakegram: Fakegram) -> None:
    phone = await fakegram.new_user("Alice", "alice")
    alice = fakegram.user_of(phone)
    alice.phone = PHONE
    bot = fakegram.client_for(alice)
    await bot.connect()
    await bot.get_me()
    fresh = fakegram.fresh_client()  # logs in now: too new to terminate others
    await fresh.connect()
    sent = await fresh(send_code())
    await fresh(functions.auth.SignInRequest(PHONE, sent.phone_code_hash, fakegram.login_code(PHONE)))
    sessions = (await phone(functions.account.GetAuthorizationsRequest())).authorizations
    assert len(sessions) == 3 and sum(bool(s.current) for s in sessions) == 1
    bot_hash = next(a.hash for a in fakegram._auths.values() if a.key.key_id == bot.session.auth_key.key_id)
    assert bot_hash in {s.hash for s in sessions}
    with pytest.raises(errors.FreshResetAuthorisationForbiddenError):
        await fresh(functions.account.ResetAuthorizationRequest(bot_hash))
    with pytest.raises(errors.HashInvalidError):
        await phone(functions.account.ResetAuthorizationRequest(12345))
    assert await phone(functions.account.ResetAuthorizationRequest(bot_hash)) is True
    with pytest.raises(errors.AuthKeyUnregisteredError):
        await bot(functions.updates.GetStateRequest())
    assert fakegram.terminate_sessions(alice) == 2  # the phone and the fresh one
    with pytest.raises(errors.AuthKeyUnregisteredError):
        await phone(functions.updates.GetStateRequest())
