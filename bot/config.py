"""Service settings, read from ``AISLE_*`` environment variables.

Build them through :func:`get_settings`, which caches one instance; nothing
here runs at import time.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from bot.policy import PolicyConfig


class Settings(BaseSettings):
    """Everything the app, the CLI and the jobs can be configured with."""

    model_config = SettingsConfigDict(env_prefix="AISLE_", extra="ignore")

    home: Path = Field(Path("var"), description="Data directory: models, index, database, logs.")
    data: Path = Field(Path(__file__).resolve().parents[2] / "shared" / "data",
                       description="The public datasets folder training, benchmarks and tests read (README.md "
                                   "\"Datasets\"); installing and serving need none of it.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; defaults to SQLite at HOME/aisle.db."
    )

    fanout: Literal["auto", "local", "postgres"] = Field(
        "auto", description="How app replicas tell each other about conversations: auto = PostgreSQL "
                            "LISTEN/NOTIFY on a PostgreSQL database, one process on SQLite.")

    llm: Literal["vllm", "local"] = Field("vllm", description="Generation backend.")
    vllm_url: str | None = Field(
        None, description="External vLLM server; unset = start and supervise our own."
    )
    base_model: Path | None = Field(
        None, description="Generator directory; defaults to the prepared SmolLM2-135M-Instruct."
    )
    served_model_name: str = Field("aisle-base", description="Model name vLLM serves the base as.")
    adapter: str | None = Field(None, description="LoRA adapter replies use, by name, over the registry's live one; "
                                "'base' keeps replies on the base model; unset: the registry's live adapter.")
    adapter_poll_s: float = Field(5.0, gt=0, description="How often the app checks the registry for a newly live "
                                  "adapter to hot-load.")
    ab_share: float = Field(0.1, gt=0, le=1, description="Share of new conversations an adapter that passed "
                            "`aisle finetune promote` serves beside the live one (A/B); 1: it takes all traffic.")
    bootstrap_mix: float = Field(2.0, ge=0, le=50, description="Bootstrap dialogs (catalog questions and service "
                                 "turns about the store's own products) `aisle finetune export` adds per logged "
                                 "example, so an adapter trained on the logs keeps its grounding; "
                                 "--catalog-examples N overrides it.")
    adapter_serving: Literal["auto", "runtime", "merged"] = Field(
        "auto", description="How the managed vLLM serves the live adapter: runtime (LoRA enabled, adapters "
        "hot-loaded), merged (merged into the weights, a second server swapped in blue/green), auto: merged "
        "on the CPU build, where LoRA costs most, runtime elsewhere. An external vLLM is always runtime.")
    max_lora_rank: int = Field(16, ge=1, le=256, description="Largest adapter rank the managed vLLM accepts.")
    vllm_port: int = Field(8100, description="Port of the managed vLLM subprocess.")
    vllm_startup_timeout_s: float = Field(240.0, gt=0)
    vllm_kvcache_gib: int = Field(2, ge=1, description="VLLM_CPU_KVCACHE_SPACE for the managed server.")
    max_model_len: int = Field(2048, ge=256)
    vllm_nice: int = Field(10, ge=0, le=19, description="CPU niceness of the managed vLLM, below the app's.")
    vllm_dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="Managed vLLM's dtype; auto: bfloat16 on GPUs and CPUs with native bf16, else float32.")
    vllm_eager: bool = Field(False, description="Run the managed vLLM without torch.compile: it starts in about "
                             "half the time (a blue/green swap too) and serves tokens more slowly.")
    dispatch_wait_ms: float = Field(
        150.0, ge=0, le=2000, description="How long a finished request may wait for the rest of its burst so "
        "they reach vLLM together (0 = never wait).")
    stream_interval: int = Field(
        3, ge=1, le=16, description="vLLM sends the first token at once, then every N tokens: fewer events "
        "for the server and the socket to carry (under load; see stream_every_token_below).")
    stream_every_token_below: int = Field(
        8, ge=0, le=1024, description="While fewer replies than this stream at once, vLLM sends every token: "
        "the guard can let the first words out at the model's pace. 0: always stream_interval.")

    connect_timeout_s: float = Field(3.0, gt=0)
    first_token_timeout_s: float = Field(
        8.0, gt=0, description="The model's first token must come this soon after the call, its one retry "
        "included; else the shopper gets the fallback reply.")
    token_gap_timeout_s: float = Field(8.0, gt=0, description="Longest silence between tokens once streaming.")
    calibrate_deadlines: bool = Field(True, description="Raise the first-token and token-gap deadlines to what a "
                                      "burst needs at the speed vLLM shows on a timed probe (see bot/llm/calibrate.py); "
                                      "false: the configured deadlines hold exactly.")
    breaker_failures: int = Field(3, ge=1, description="Consecutive failed model calls that open the breaker.")
    breaker_reset_s: float = Field(10.0, gt=0, description="Seconds the breaker stays open before a trial call.")
    max_tokens: int = Field(160, ge=1, le=1024, description="Cap on generated tokens per reply.")
    temperature: float = Field(0.3, ge=0, le=2)
    repetition_penalty: float = Field(1.1, ge=1.0, le=2.0, description="Discourages loops in small models.")

    retrieve_k: int = Field(5, ge=1, le=20, description="Products retrieved per turn.")
    torch_threads: int = Field(
        1, ge=0, description="Torch threads for the app's own models (0 = torch default); keeps them "
        "from competing with a vLLM on the same cores.")
    personalize: bool = Field(True, description="Rank products by the shopper's profile.")
    signals: bool = Field(True, description="Score each message (intent, sentiment) and each shopper (churn); "
                          "off = no routing by intent and no policy rules.")
    classifier_int8: bool = Field(True, description="Run the classifiers' linear layers in int8.")
    policy_negative_turns: int = Field(2, ge=1, description="Negative turns in a row that offer a human.")
    policy_negative_min: float = Field(0.35, gt=0, le=1, description="Floor on P(negative) for a negative turn.")
    policy_churn_high: float = Field(0.7, gt=0, le=1, description="Churn probability that counts as high risk.")
    retention_offer: str | None = Field(
        "10% off your next order with code STAY10",
        description="Retention gesture the assistant may mention to high-risk, calm shoppers; empty = none.")
    classifier_dir: Path | None = Field(None, description="Versioned classifiers; default HOME/models/classifiers.")
    returns_policy: str = Field(
        "Unused items can be returned within 30 days of delivery for a full refund; start a return "
        "from your order page and we email a free return label. Refunds reach your card 5-7 days "
        "after the item arrives back.")
    delivery_policy: str = Field(
        "Standard delivery takes 3-5 working days and is free over $50; express delivery takes 1-2 "
        "working days for $9.95.")
    cancellation_policy: str = Field(
        "Orders can be cancelled free of charge until they ship; after that, return them instead.")
    server_answers: bool = Field(
        True, description="The server writes the answers it can decide (facts from the catalog, orders and "
        "policies; greetings, refusals); off = the model writes every reply from the same grounding (what "
        "`aisle bench conversation --model-only` measures).")
    price_match_policy: str = Field(
        "We don't match other shops' prices; the price on each card is our best price.",
        description="What a price-match request is told; the assistant never promises another price.")
    history_turns: int = Field(6, ge=0, description="Earlier messages included in the prompt.")
    max_message_chars: int = Field(4000, ge=1)
    max_frame_bytes: int = Field(16 * 1024, ge=1024, description="Larger frames close the socket (1009).")
    messages_per_s: float = Field(1.0, gt=0, description="Sustained shopper messages per second per socket.")
    message_burst: int = Field(5, ge=1, description="Shopper messages allowed in a burst.")
    outbox_frames: int = Field(256, ge=8, description="Frames queued for one socket before senders wait.")
    outbox_wait_s: float = Field(10.0, gt=0, description="A socket whose queue stays full this long is shed (1013).")
    ws_ping_interval_s: float = Field(20.0, gt=0, description="Seconds between WebSocket pings.")
    ws_ping_timeout_s: float = Field(20.0, gt=0, description="A peer silent this long after a ping is dropped.")
    sockets_per_ip: int = Field(64, ge=1, description="Open chat sockets allowed from one IP address.")
    sessions_per_ip_per_min: float = Field(60.0, gt=0, description="New shopper sessions per minute per IP.")
    session_burst_per_ip: int = Field(60, ge=1, description="New shopper sessions one IP may open in a burst.")
    allowed_origins: list[str] = Field(
        default_factory=list, description="Storefront origins allowed to open the chat socket, besides the "
        "server's own; '*' allows any.")

    secret_key: str | None = Field(
        None, description="Token signing key; unset = a random key kept in HOME/secret.key."
    )
    session_ttl_s: int = Field(7 * 24 * 3600, gt=0)
    agent_session_ttl_s: int = Field(12 * 3600, gt=0, description="How long an agent's console login lasts.")
    store_name: str = Field("Aisle Demo Store")
    link_hosts: str = Field("", description="The store's own hosts, comma-separated (shop.example.com): links to "
                            "them may appear in replies; the guard cuts links to any other host.")
    host: str = "127.0.0.1"
    port: int = 8000

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    def server_options(self) -> dict[str, Any]:
        """WebSocket options for the ASGI server (uvicorn keyword arguments)."""
        return {"ws_max_size": self.max_frame_bytes * 8, "ws_ping_interval": self.ws_ping_interval_s,
                "ws_ping_timeout": self.ws_ping_timeout_s}

    @property
    def db_url(self) -> str:
        """The effective database URL."""
        return self.database_url or f"sqlite:///{self.home / 'aisle.db'}"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    def signing_key(self) -> str:
        """The token signing key, created once under HOME when not configured."""
        if self.secret_key:
            return self.secret_key
        path = self.home / "secret.key"
        if not path.exists():
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def served_adapter(self) -> str | None:
        """The adapter name replies start on before the registry is read (None: the base model)."""
        return None if self.adapter in (None, "base") else self.adapter

    @property
    def merged_adapters(self) -> bool:
        """Whether the live adapter is served merged into the weights (see ``adapter_serving``)."""
        if self.vllm_url or self.llm != "vllm" or self.adapter_serving == "runtime":
            return False
        if self.adapter_serving == "merged":
            return True
        from bot.llm.managed import vllm_is_cpu_build

        return vllm_is_cpu_build()

    @property
    def adapters_path(self) -> Path:
        return self.home / "models" / "adapters"

    def merged_path(self, adapter: str) -> Path:
        """Where an adapter merged into the base weights is kept (a model directory for a vLLM without LoRA)."""
        return self.home / "models" / "merged" / adapter

    @property
    def classifiers_path(self) -> Path:
        return self.classifier_dir or self.home / "models" / "classifiers"

    def policy_config(self) -> PolicyConfig:
        from bot.policy import PolicyConfig

        return PolicyConfig(negative_turns=self.policy_negative_turns, negative_min=self.policy_negative_min,
                            churn_high=self.policy_churn_high, retention_offer=self.retention_offer or None)

    @property
    def link_host_list(self) -> tuple[str, ...]:
        return tuple(h.strip().lower() for h in self.link_hosts.split(",") if h.strip())

    @property
    def policies(self) -> dict[str, str]:
        return {"returns": self.returns_policy, "delivery": self.delivery_policy,
                "cancellation": self.cancellation_policy}

    @property
    def generator_path(self) -> Path:
        from bot.model_store import generator_dir

        return self.base_model or generator_dir(self.home)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, built on first use."""
    return Settings()
