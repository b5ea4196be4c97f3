# What every system's config shares.
export RENDEZVOUS_PORT=29571
export EPOCHS=4
export OMP_NUM_THREADS=1
export DATA_DIR=/data
export RESULTS_DIR=/results
export DGXSYSTEM=$(basename "$(readlink -f "${BASH_SOURCE[1]}")" | sed 's/^config_//; s/\.sh$//')
