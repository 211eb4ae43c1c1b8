# The image the KubeRay manifests run (k8s/: image memos-cluster:0.1.0): Ray's own image with
# this project installed the way scripts/install.sh installs it (CPU torch first, then the exact
# versions in constraints.txt). GPU nodes: build FROM rayproject/ray:2.60.0-py311-gpu instead and
# install a CUDA torch. Build: docker build -t memos-cluster:0.1.0 .
FROM rayproject/ray:2.60.0-py311-cpu
WORKDIR /app
COPY --chown=ray:users . /app
RUN pip install --no-cache-dir "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir -c constraints.txt -e . \
 && python -c "import memos_cluster, actors"
ENV HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
