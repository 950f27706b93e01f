# One image for every stack service on Kubernetes (processor, producers, loadgen, alert webhook, and the later
# services): `docker build -t gameday-stack:dev .`, then `kind load docker-image gameday-stack:dev`
# (scripts/kind-up.sh does both). The Deployment picks the service with its args: python -m stack.<service> ...
# It also carries the framework, the experiments and the SLO spec, so `gameday gate` can run in the cluster
# (deploy/k8s/gameday-cronjob.yaml), and the driver's partition reaper Jobs use it (nothing else to pull).
# Machines that cannot pull build the same on Debian's Python instead (scripts/kind-python-base.sh; kind-up.sh
# does that by itself when python:3.11-slim cannot be pulled).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# tini is PID 1: it forwards SIGTERM to the service, and it lets the Kubernetes target restart a container by
# killing the service from inside it (`kill -1` spares PID 1, and the kernel ignores SIGKILL sent to a namespace's
# init from inside). When the service dies, tini exits with it and the kubelet counts a restart.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/gameday
COPY pyproject.toml README.md ./
COPY stack ./stack
COPY chaoslib_ext ./chaoslib_ext
COPY probes ./probes
COPY experiments ./experiments
COPY deploy/monitoring ./deploy/monitoring
# Both editable (the reference stack is its own distribution, in stack/), so the probes find
# deploy/monitoring/slos.yaml beside them, as in a checkout.
RUN pip install -e ./stack -e '.[all]' && python -c "import chaos_dr_stack.processor, chaos_dr_stack.producers, chaos_dr_stack.loadgen, chaos_dr_stack.alert_webhook"

RUN groupadd --gid 10001 gameday && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin gameday
USER 10001:10001
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["python", "-m", "chaos_dr_stack.processor", "--help"]
