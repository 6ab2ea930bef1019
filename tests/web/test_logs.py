from __future__ import annotations

import logging

from web.logs import RedactTokens


def test_tokens_never_reach_the_log() -> None:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1,
                               '%s - "WebSocket %s" [accepted]', ("127.0.0.1:5", "/ws/chat?token=abc.DEF-123&x=1"), None)
    assert RedactTokens().filter(record)
    assert "abc.DEF-123" not in record.getMessage() and "token=[redacted]&x=1" in record.getMessage()
