# The streamdesk image: one image, three roles (api by default; `streamdesk worker`; topic set-up).
# docker-compose.yml runs it next to Apache Kafka (KRaft). Every dependency ships a manylinux wheel
# for CPython 3.11 on x86_64, so no compiler is needed.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STREAMDESK_DATA_DIR=/data

WORKDIR /src
COPY pyproject.toml README.md ./
COPY pipeline/ pipeline/
COPY api/ api/
COPY schemas/ schemas/
COPY simulators/ simulators/
# Install (not editable), then drop the sources so nothing can shadow the installed packages.
RUN pip install . && rm -rf /src

# Non-root. /data is created here and owned by the user so a fresh named volume inherits that ownership;
# the DuckDB file and the generated JWT/Fernet secrets live there.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/streamdesk streamdesk \
    && mkdir -p /data \
    && chown streamdesk:streamdesk /data
USER streamdesk
# Faust writes its (unused, store="memory://") data directory into the working directory.
WORKDIR /home/streamdesk
VOLUME ["/data"]

EXPOSE 8000
CMD ["streamdesk", "api"]
