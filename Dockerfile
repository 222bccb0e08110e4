# Pulseboard in a container: `docker build -t pulseboard .`, then
#   docker run -p 8050:8050 -v pulseboard-data:/var/lib/pulseboard \
#     -e PULSEBOARD_SECRET_KEY_FILE=/run/secrets/secret_key -e PULSEBOARD_ADMIN_PASSWORD_FILE=/run/secrets/admin_password \
#     pulseboard
# deploy/compose.yaml runs it scaled out, with agents, Prometheus and Alertmanager.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml requirements.txt README.md ./
COPY dashboard_app ./dashboard_app
COPY collectors ./collectors
COPY layouts ./layouts
COPY query ./query
COPY tsdb ./tsdb
COPY ingest ./ingest
COPY assets ./assets
RUN pip install --no-cache-dir /src \
    && rm -rf /src \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/pulseboard --create-home pulseboard

WORKDIR /var/lib/pulseboard
ENV PULSEBOARD_ENV=production \
    PULSEBOARD_DATA_DIR=/var/lib/pulseboard
VOLUME ["/var/lib/pulseboard"]
USER 10001:10001
EXPOSE 8050

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8050/-/healthy', timeout=4)"]

CMD ["gunicorn", "-c", "python:dashboard_app.production", "--bind", "0.0.0.0:8050", "dashboard_app.wsgi:server"]
