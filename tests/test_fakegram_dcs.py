"""fakegram self-tests: the second data centre, as tests/fakegram/logins.py and rpc_files.py
cite core.telegram.org/api/datacenter, /api/qr-login and /api/errors (303 SEE_OTHER) for it.

Telethon's own DC switching (PHONE_MIGRATE, loginTokenMigrateTo) runs in tests/test_login_dc.py,
in a child process: Telethon caches help.getConfig per class (telegrambaseclient.py, _get_dc).
"""

from __future__ import annotations

import pytest
from telethon import errors, functions, types

from tests.fakegram import Fakegram

pytestmark = [pytest.mark.asyncio(loop_scope="function"), pytest.mark.wire]


async def test_get_config_lists_both_dcs_each_on_its_port(fakegram: Fakegram) -> None:
    on_dc2, on_dc1 = fakegram.fresh_client(), fakegram.fresh_client(1)
    await on_dc2.connect()
    await on_dc1.connect()
    config2 = await on_dc2(functions.help.GetConfigRequest())
    config1 = await on_dc1(functions.help.GetConfigRequest())
    assert (config2.this_dc, config1.this_dc) == (2, 1)
    ports = {o.id: o.port for o in config2.dc_options}
    assert ports == {2: fakegram.port, 1: fakegram.port_of(1)} and ports[1] != ports[2]


async def test_a_file_stored_on_another_dc_is_file_migrate_there(fakegram: Fakegram) -> None:
    alice = fakegram.create_user("Alice", username="alice")
    bot = await fakegram.new_user("Bot", username="bot")
    fakegram.store_files_on(1)
    fakegram.send_message(alice, fakegram.user_of(bot), voice=b"OggS" + bytes(5000), duration=1)
    (message,) = await bot.get_messages("alice", limit=1)
    document = message.media.document
    assert document.dc_id == 1
    location = types.InputDocumentFileLocation(document.id, document.access_hash, document.file_reference, "")
    with pytest.raises(errors.FileMigrateError) as raised:
        await bot(functions.upload.GetFileRequest(location, offset=0, limit=4096))
    assert raised.value.new_dc == 1
    with pytest.raises(errors.DcIdInvalidError):  # "The provided DC ID is invalid": its own DC
        await bot(functions.auth.ExportAuthorizationRequest(2))
    exported = await bot(functions.auth.ExportAuthorizationRequest(1))
    other = fakegram.fresh_client(1)
    await other.connect()
    with pytest.raises(errors.AuthBytesInvalidError):
        await other(functions.auth.ImportAuthorizationRequest(exported.id, b"not these bytes"))
    await other(functions.auth.ImportAuthorizationRequest(exported.id, exported.bytes))
    chunk = await other(functions.upload.GetFileRequest(location, offset=0, limit=4096))
    assert chunk.bytes == b"OggS" + bytes(4092)
    with pytest.raises(errors.AuthBytesInvalidError):  # the bytes log in once
        await other(functions.auth.ImportAuthorizationRequest(exported.id, exported.bytes))


async def test_a_qr_token_accepted_on_another_dc_migrates(fakegram: Fakegram) -> None:
    alice = fakegram.create_user("Alice", username="alice")
    fakegram.home_on(alice, 1)
    phone = fakegram.client_for(alice)  # its session names DC 1
    await phone.connect()
    assert phone.session.dc_id == 1
    app = fakegram.fresh_client()
    await app.connect()
    token = await app(functions.auth.ExportLoginTokenRequest(1, "fakegram", []))
    await phone(functions.auth.AcceptLoginTokenRequest(token.token))
    moved = await app(functions.auth.ExportLoginTokenRequest(1, "fakegram", []))
    assert isinstance(moved, types.auth.LoginTokenMigrateTo) and moved.dc_id == 1
    with pytest.raises(errors.AuthTokenInvalidError):  # "to the specified DC" only
        await app(functions.auth.ImportLoginTokenRequest(moved.token))
    there = fakegram.fresh_client(1)
    await there.connect()
    done = await there(functions.auth.ImportLoginTokenRequest(moved.token))
    assert isinstance(done, types.auth.LoginTokenSuccess) and done.authorization.user.id == alice.id
    assert (await there.get_me()).id == alice.id
    with pytest.raises(errors.AuthTokenInvalidError):  # once
        await there(functions.auth.ImportLoginTokenRequest(moved.token))
