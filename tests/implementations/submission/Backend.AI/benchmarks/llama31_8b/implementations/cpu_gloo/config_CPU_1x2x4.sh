# One node, two tasks (a GPU each on a real system), batch 4 per task.
source $(dirname ${BASH_SOURCE[0]})/config_common.sh
export DGXNNODES=1
export DGXNGPU=2
export BATCHSIZE=4
export WALLTIME=$(( ${NEXP:-1} * 5 ))
