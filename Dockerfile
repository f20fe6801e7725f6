# lifeline: one image for every service (vrrp, checker, lvs, notifier) and nats-server.
#
#   podman build --network host -t lifeline:latest \
#     --build-arg BASE=localhost/lifeline-base:bookworm \
#     -v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro --build-arg PIP_CERT=/run/host-ca.crt .
#
# BASE is any Debian bookworm root (default debian:bookworm-slim; without a registry,
# deploy/test-setup.sh imports one made by debootstrap).  PIP_CERT, when set, is the
# CA bundle pip trusts (a TLS-intercepting proxy); it is a build-time mount, not in the image.
# The image runs as the unprivileged user `lifeline`; compose runs vrrp, lvs and a
# pinging checker as root with only the capabilities they need (docs/deploy.md).
ARG BASE=debian:bookworm-slim
FROM ${BASE}

ARG PIP_CERT=
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 PATH=/opt/lifeline/bin:$PATH

# nftables: vrrp's no_accept / strict-mode rules (docs/vrrp.md); apt only for what the base lacks.
RUN missing=""; \
    if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip' 2>/dev/null; then \
      missing="python3 python3-venv ca-certificates"; \
    fi; \
    command -v nft >/dev/null || missing="$missing nftables"; \
    if [ -n "$missing" ]; then \
      apt-get update && apt-get install -y --no-install-recommends $missing && rm -rf /var/lib/apt/lists/*; \
    fi \
 && python3 -m venv /opt/lifeline \
 && groupadd --system --gid 990 lifeline \
 && useradd --system --uid 990 --gid lifeline --home-dir /var/lib/lifeline --create-home lifeline \
 && mkdir -p /etc/lifeline /etc/keepalived /var/lib/lifeline/nats \
 && chown -R lifeline:lifeline /var/lib/lifeline \
 && chmod 2770 /var/lib/lifeline

# Dependencies first (a code change does not re-download them), then the project.
COPY pyproject.toml README.md LICENSE /src/
RUN set -e; cert=""; if [ -n "$PIP_CERT" ]; then cert="--cert=$PIP_CERT"; fi; \
    python3 -c 'import tomllib; print("\n".join(tomllib.load(open("/src/pyproject.toml", "rb"))["project"]["dependencies"]))' >/tmp/reqs.txt; \
    /opt/lifeline/bin/pip install $cert -q -r /tmp/reqs.txt
COPY shared /src/shared
COPY services /src/services
RUN set -e; cert=""; if [ -n "$PIP_CERT" ]; then cert="--cert=$PIP_CERT"; fi; \
    /opt/lifeline/bin/pip install $cert -q --no-deps /src; \
    /opt/lifeline/bin/pip uninstall -q -y pip setuptools; \
    rm -rf /src /tmp/reqs.txt; \
    /opt/lifeline/bin/nats-server --version

USER lifeline
WORKDIR /var/lib/lifeline
ENTRYPOINT ["lifeline"]
CMD ["--help"]
