"""In-process transformers generation with a streamer, for machines without vLLM."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from bot.llm.base import Delta, GenerationRequest, LLMBackend, LLMUnavailable, StreamItem, Usage


class LocalBackend(LLMBackend):
    """Runs ``model.generate`` in a worker thread and streams its text.

    One generation runs at a time; closing the stream stops generation at the
    next token.
    """

    name = "local"

    def __init__(self, model_dir: Path, served_name: str = "aisle-base") -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._served = served_name
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(
            model_dir, local_files_only=True, dtype=torch.float32
        ).eval()
        self._lock = asyncio.Lock()

    @property
    def model_name(self) -> str:
        return self._served

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamItem, None]:
        if request.model and request.model != self._served:
            raise LLMUnavailable(f"the local backend serves only the base model, not {request.model!r}")
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        stop = threading.Event()

        class _Stop(StoppingCriteria):
            def __call__(self, *_: Any, **__: Any) -> bool:
                return stop.is_set()

        async with self._lock:
            if request.prefix:
                inputs: Any = self.tokenizer.apply_chat_template(
                    [*request.messages, {"role": "assistant", "content": request.prefix}],
                    continue_final_message=True, return_tensors="pt", return_dict=True,
                )
            else:
                inputs = self.tokenizer.apply_chat_template(
                    request.messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
                )
            streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
            result: dict[str, Any] = {}

            def work() -> None:
                try:
                    kwargs: dict[str, Any] = {
                        "max_new_tokens": request.max_tokens,
                        "streamer": streamer,
                        "stopping_criteria": StoppingCriteriaList([_Stop()]),
                        "pad_token_id": self.tokenizer.eos_token_id,
                        "repetition_penalty": request.repetition_penalty,
                    }
                    if request.temperature > 0:
                        kwargs.update(do_sample=True, temperature=request.temperature)
                    else:
                        kwargs.update(do_sample=False)
                    result["out"] = self.model.generate(**inputs, **kwargs)
                except Exception as exc:  # surfaced to the consumer below
                    result["error"] = exc
                    streamer.end()

            thread = threading.Thread(target=work, name="aisle-local-generate", daemon=True)
            thread.start()
            loop = asyncio.get_running_loop()
            sentinel = object()
            try:
                while (text := await loop.run_in_executor(None, next, streamer, sentinel)) is not sentinel:
                    if text:
                        yield Delta(str(text))
            finally:
                stop.set()
                await loop.run_in_executor(None, thread.join)
            if "error" in result:
                raise LLMUnavailable(f"local generation failed: {result['error']!r}")
            prompt_len = int(inputs["input_ids"].shape[1])
            total = int(result["out"].shape[1])
            finish = "length" if total - prompt_len >= request.max_tokens else "stop"
            yield Usage(prompt_len, total - prompt_len, finish, self._served)

    async def health(self) -> bool:
        return True
