#!/bin/sh
# Backend.AI's entrypoint sources this file as root when a container of the session starts (before it drops to
# the session's user). An implementation expects its data and results at fixed container paths (/data,
# /results, ...); the run mounts virtual folders under /home/work and names the links in MLPERF_IMPL_LINKS
# ("path=target;..."), which only root may create outside /home/work. Written by mlperf-backendai
# (implementations/image.py); a path the image already fills is left alone and reported.
if [ -n "${MLPERF_IMPL_LINKS:-}" ]; then
    _mlperf_ifs=$IFS
    IFS=';'
    for _mlperf_link in $MLPERF_IMPL_LINKS; do
        _mlperf_path=${_mlperf_link%%=*}
        _mlperf_target=${_mlperf_link#*=}
        if [ -d "$_mlperf_path" ] && [ ! -L "$_mlperf_path" ]; then
            rmdir "$_mlperf_path" 2>/dev/null
        fi
        if [ -e "$_mlperf_path" ] && [ ! -L "$_mlperf_path" ]; then
            echo "mlperf-backendai: $_mlperf_path exists in the image and is not empty: not linked to $_mlperf_target" >&2
        else
            mkdir -p "$(dirname "$_mlperf_path")"
            ln -sfn "$_mlperf_target" "$_mlperf_path"
        fi
    done
    IFS=$_mlperf_ifs
    unset _mlperf_ifs _mlperf_link _mlperf_path _mlperf_target
fi
