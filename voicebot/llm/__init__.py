"""The opt-in LLM (``LLM_URL``): an OpenAI-compatible chat endpoint. See docs/llm.md.

Example::

    from voicebot.llm import LlmClient
    llm = LlmClient(settings.llm_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout_seconds)
"""

from voicebot.llm.client import LlmClient, LlmError

__all__ = ["LlmClient", "LlmError"]
