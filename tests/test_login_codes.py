"""``login`` says in one line what each kind of login code Telegram sends means
(``auth.SentCodeType``, core.telegram.org/type/auth.SentCodeType), typed into the CLI against
the fake; where no code is coming (a login email to set up first, a paid SMS), it ends there.
"""

from __future__ import annotations

import pytest
from telethon.tl import types

from .test_login import PHONE, alices_account, telegram, type_phone, voicebot  # noqa: F401 (a fixture)

pytestmark = pytest.mark.wire

CODE_LINES = [
    (types.auth.SentCodeTypeApp(length=5), "sent a 5-digit code to your Telegram app"),
    (types.auth.SentCodeTypeSms(length=5), "sent a 5-digit code by SMS"),
    (types.auth.SentCodeTypeCall(length=5), "will call you and read out a 5-digit code"),
    (types.auth.SentCodeTypeFlashCall(pattern="+44 20 ****"), "the calling number (+44 20 ****) is the code"),
    (types.auth.SentCodeTypeMissedCall(prefix="+44 20", length=5), "starting +44 20: its last digits are the"),
    (types.auth.SentCodeTypeEmailCode(email_pattern="a***@example.com", length=5), "login email (a***@example.com)"),
    (types.auth.SentCodeTypeFragmentSms(url="https://fragment.com/c", length=5), "open https://fragment.com/c"),
    (types.auth.SentCodeTypeFirebaseSms(length=5), "if none comes, use `login --qr`"),
    (types.auth.SentCodeTypeSmsWord(beginning="k"), 'secret word by SMS (it starts with "k")'),
    (types.auth.SentCodeTypeSmsPhrase(), "secret phrase by SMS: type that phrase as the code"),
]


@pytest.mark.parametrize("kind, line", CODE_LINES, ids=[type(k).__name__ for k, _ in CODE_LINES])
def test_each_code_type_says_where_the_code_is(telegram, tmp_path, kind, line):  # noqa: F811
    alices_account(telegram, tmp_path)
    telegram.call(telegram.server.set_code_type, kind)
    with voicebot(tmp_path, "login") as term:
        type_phone(term)
        term.expect(line)
        term.expect("Login code:")
        term.type(telegram.call(telegram.server.login_code, PHONE))
        term.expect("Logged in as Alice")
        assert term.wait() == 0


NO_CODE = [
    (types.auth.SentCodeTypeSetUpEmailRequired(), "set up a login email in an official Telegram app first"),
    (
        types.auth.SentCodePaymentRequired("store", "hash", "support@example.com", "login", 30, "EUR", 100),
        "only as a paid SMS",
    ),
]


@pytest.mark.parametrize("kind, line", NO_CODE, ids=[type(k).__name__ for k, _ in NO_CODE])
def test_no_code_coming_ends_the_login_with_one_line(telegram, tmp_path, kind, line):  # noqa: F811
    alices_account(telegram, tmp_path)
    telegram.call(telegram.server.set_code_type, kind)
    with voicebot(tmp_path, "login") as term:
        type_phone(term)
        assert term.wait() == 1
        after = term.screen.rsplit(PHONE, 1)[1]  # what came after the typed number
        lines = [x for x in after.strip().splitlines() if x]
        assert len(lines) == 1 and line in lines[0] and "login --qr" in lines[0], term.screen
        assert "Login code" not in term.screen
