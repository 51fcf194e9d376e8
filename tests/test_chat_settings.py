from voicebot.state import State
from voicebot.state.chat_settings import ChatSettings


def test_settings_default_round_trip_and_survive_reopen(tmp_path):
    db = tmp_path / "state.db"
    with State(db) as s:
        assert s.chats.get(42) == ChatSettings(auto=None, language=None)
        s.chats.set_auto(42, False)
        s.chats.set_language(42, " RU ")
        s.chats.set_auto(-100123, True)
        assert s.chats.get(42) == ChatSettings(auto=False, language="ru")
    with State(db) as s:
        assert s.chats.get(42) == ChatSettings(auto=False, language="ru")
        assert s.chats.get(-100123) == ChatSettings(auto=True, language=None)
        assert s.chats.get(7) == ChatSettings()
        s.chats.set_auto(42, None)
        s.chats.set_language(42, "")
        assert s.chats.get(42) == ChatSettings()
        s.chats.set_language(-100123, "en")
        s.chats.set_language(-100123, None)
        assert s.chats.get(-100123) == ChatSettings(auto=True, language=None)
        assert s.db.one("SELECT count(*) FROM chat_settings", ())[0] == 1  # defaults need no row
