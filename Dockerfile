# The gate server image (API, dashboard, reaper). Worker images add torch and lm-eval (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY gate gate
COPY migrations migrations
COPY baselines baselines
COPY templates templates
ARG EXTRAS=""
RUN pip install --no-cache-dir ".${EXTRAS}"
ENV GATE_BASELINES_DIR=/app/baselines GATE_TEMPLATES_DIR=/app/templates
EXPOSE 8000
CMD ["gate", "serve", "--host", "0.0.0.0", "--port", "8000"]
