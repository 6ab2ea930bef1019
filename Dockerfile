# GPU image: the vLLM CUDA build plus the aisle app. The same image runs either role
# (see compose.yaml): `aisle serve` for the app, the vLLM OpenAI server for the model.
FROM vllm/vllm-openai:latest

ENV AISLE_HOME=/data \
    HF_HUB_OFFLINE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY retrieval ./retrieval
COPY finetune ./finetune
COPY web ./web

# vLLM and torch come from the base image; add the app with its GPU extras.
RUN pip install --no-cache-dir -e '.[gpu]' \
 && aisle models prepare

EXPOSE 8000
ENTRYPOINT []
CMD ["aisle", "serve", "--host", "0.0.0.0", "--port", "8000"]
