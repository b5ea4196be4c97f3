# Two nodes, one task each, batch 8 per task.
source $(dirname ${BASH_SOURCE[0]})/config_common.sh
export DGXNNODES=2
export DGXNGPU=1
export BATCHSIZE=8
export WALLTIME=$(( ${NEXP:-1} * 5 ))
