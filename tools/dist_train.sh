#!/usr/bin/env bash
# Distributed training with torchrun: GPUS processes on each of NNODES nodes.
#   tools/dist_train.sh CONFIG GPUS [train.py args]
# Multi-node: run it on every node with the same MASTER_ADDR/PORT and
# NNODES, and NODE_RANK=0..NNODES-1. Without CUDA the processes use gloo on
# the CPU. PYTHON selects the interpreter (e.g. a venv's python).

if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [train.py args]" >&2
    exit 2
fi

CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}
TOOLS_DIR=$(dirname "$0")

PYTHONPATH="$TOOLS_DIR/..":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$TOOLS_DIR/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
