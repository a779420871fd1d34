# Parley bot: one process runs Slack, Discord, the scheduler and the HTTP server.
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BOT_DATA_DIR=/data \
    TIKTOKEN_CACHE_DIR=/home/parley/.cache/tiktoken \
    LOG_FORMAT=json \
    HOST=0.0.0.0

RUN useradd --create-home --uid 10001 parley \
    && mkdir -p /data /app \
    && chown parley:parley /data /app

WORKDIR /app

# Dependencies first: this layer is reused until requirements.txt changes.
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY --chown=parley:parley pyproject.toml README.md agents.yaml prices.yaml ./
COPY --chown=parley:parley bot ./bot
COPY --chown=parley:parley adapters ./adapters
COPY --chown=parley:parley memory ./memory
COPY --chown=parley:parley config ./config
RUN pip install --no-deps .

USER parley
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"3000\")}/healthz', timeout=4)"]
CMD ["python", "-m", "bot", "run"]
