# The paper-trading API (`quantum-trader serve`) on the shipped candles and examples/demo.toml.
# Build and run it with `docker compose up --build`, or on its own:
#   docker build -t quantum-trader .
#   docker run --rm -p 127.0.0.1:8000:8000 -e QT_API_KEY_FILE=/run/secrets/qt_api_key \
#       -v "$HOME/.config/quantum-trader/api_key:/run/secrets/qt_api_key:ro" quantum-trader
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The LightGBM wheel (4.7 checked) links against the system OpenMP runtime, libgomp.so.1, which
# the slim image lacks. The xgboost-cpu wheel bundles its own copy.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# The service runs as this user. The files below stay owned by root, so the process cannot
# change its own code, data or settings.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin trader

WORKDIR /app

# Install the package before copying the rest, so a change to the data or the examples reuses
# the cached dependency layer.
COPY pyproject.toml README.md ./
COPY quantum_trader ./quantum_trader
RUN pip install --no-cache-dir ".[xgboost,postgres,redis]"

# The candles (data/binance) and examples/demo.toml are read relative to /app.
COPY . .

USER trader

EXPOSE 8000

# The lifespan trains the models before uvicorn accepts requests, hence the long start period.
# The slim image has no curl, so Python makes the request. urlopen raises on a refused
# connection, a timeout or an HTTP error status, and the exception exits with status 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

# Inside a container, 127.0.0.1 is the container's own loopback interface, which a published
# port cannot reach, so the service binds 0.0.0.0. Publish the port on the host's loopback
# (`-p 127.0.0.1:8000:8000`) to keep the API off the network.
# QT_API_KEY or QT_API_KEY_FILE sets the key at run time. The image contains no key, and
# without one the endpoints that change state reject every request.
CMD ["quantum-trader", "serve", "--host", "0.0.0.0", "--port", "8000", "--config", "examples/demo.toml"]
