"""The one client for OpenAI-compatible LLM / VLM endpoints: chat with images, JSON answers, a disk
cache keyed by request, retries with backoff, a rate limit, concurrency, and a token and cost log.

``citrusv.llm.fake_server`` holds ``FakeOpenAIServer``, a local server for tests; it is not
imported here.
"""

from .cache import ResponseCache, request_key
from .client import ChatRequest, ChatResult, LLMClient, parse_chat_completion
from .errors import LLMAuthError, LLMConnectionError, LLMError, LLMHTTPError, LLMResponseError
from .jsonreply import extract_json
from .messages import Message, assistant_message, image_part, image_to_data_url, system_message, user_message
from .ratelimit import RateLimiter
from .usage import UsageSummary

__all__ = ["ChatRequest", "ChatResult", "LLMAuthError", "LLMClient", "LLMConnectionError", "LLMError",
           "LLMHTTPError", "LLMResponseError", "Message", "RateLimiter", "ResponseCache", "UsageSummary",
           "assistant_message", "extract_json", "image_part", "image_to_data_url", "parse_chat_completion",
           "request_key", "system_message", "user_message"]
