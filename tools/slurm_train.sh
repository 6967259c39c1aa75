#!/usr/bin/env bash
# Training on a Slurm cluster: one task per GPU, started by srun.
#   [GPUS=16 GPUS_PER_NODE=8] tools/slurm_train.sh PARTITION JOB_NAME CONFIG \
#       WORK_DIR [train.py args]
# GPUS: total tasks (default 8); GPUS_PER_NODE: default min(GPUS, 8);
# CPUS_PER_TASK: default 5; SRUN_ARGS: extra srun arguments; PYTHON: the
# interpreter (default python). Add --resume to continue a preempted job
# from the latest checkpoint of WORK_DIR.

if [ $# -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]" >&2
    exit 2
fi

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-$((GPUS < 8 ? GPUS : 8))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
TOOLS_DIR=$(dirname "$0")

set -x

PYTHONPATH="$TOOLS_DIR/..":$PYTHONPATH \
srun -p "${PARTITION}" \
    --job-name="${JOB_NAME}" \
    --gres=gpu:"${GPUS_PER_NODE}" \
    --ntasks="${GPUS}" \
    --ntasks-per-node="${GPUS_PER_NODE}" \
    --cpus-per-task="${CPUS_PER_TASK}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "$PYTHON" -u "$TOOLS_DIR/train.py" "${CONFIG}" --work-dir="${WORK_DIR}" \
    --launcher=slurm "${@:5}"
