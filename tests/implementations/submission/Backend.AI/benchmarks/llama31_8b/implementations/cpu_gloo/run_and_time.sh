#!/bin/bash
# One task of the world: srun starts ${DGXNGPU} of these per node. It reads only what srun sets (SLURM_*) and
# what the config exports, as the submissions of MLPerf Training v3.x do.
set -euo pipefail

: "${SLURM_PROCID:?not started by srun}" "${SLURM_LOCALID:?}" "${SLURM_NTASKS:?}" "${SLURM_NODEID:?}"
: "${SLURM_JOB_NUM_NODES:?}" "${SLURM_NTASKS_PER_NODE:?}" "${SLURM_JOB_NODELIST:?}" "${SLURM_JOB_ID:?}"
: "${DGXNNODES:?source a config}" "${DGXNGPU:?}" "${BATCHSIZE:?}" "${SEED:?}"

if [ "${SLURM_NTASKS}" -ne $((DGXNNODES * DGXNGPU)) ]; then
    echo "rank ${SLURM_PROCID}: ${SLURM_NTASKS} tasks, but the config is for ${DGXNNODES} x ${DGXNGPU}" >&2
    exit 3
fi
# The rendezvous: the first node of the job, a port of the config.
export TINY_RENDEZVOUS="${SLURM_JOB_NODELIST%%,*}:${RENDEZVOUS_PORT}"
exec python -u train.py
