# shellcheck shell=bash
# cmd.sh: how the recipes run their jobs (sourced by every recipe after option parsing).
#
# The backend comes from the recipe's --backend option, else from $ASCTOOL_BACKEND,
# else "local":
#   local  jobs run on this machine, in parallel (utils/run_local.sh)
#   slurm  jobs are submitted as Slurm array jobs and waited for (utils/run_slurm.sh),
#          with the settings of $ASCTOOL_SLURM_CONF (default: conf/slurm.conf); a rerun
#          resubmits only the array tasks that have not succeeded (the recipe's --force
#          resubmits them all). docs/scaling.md: setting it up on a cluster.
# Every command has the form
#   $cpu_cmd [JOB=1:N] LOG asctool STAGE ... (JOB in LOG and arguments becomes 1..N)
# cpu_cmd is for data preparation and features, gpu_cmd for training and prediction.
# Both are arrays: use them as "${cpu_cmd[@]}" JOB=1:4 log/x.JOB.log asctool ...

# shellcheck disable=SC2034  # cpu_cmd and gpu_cmd are used by the recipe sourcing this file
true
_cmd_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
backend="${backend:-${ASCTOOL_BACKEND:-local}}"

case "$backend" in
  local)
    cpu_cmd=("$_cmd_dir/utils/run_local.sh")
    gpu_cmd=("$_cmd_dir/utils/run_local.sh")
    ;;
  slurm)
    _slurm_conf="${ASCTOOL_SLURM_CONF:-$_cmd_dir/conf/slurm.conf}"
    cpu_cmd=("$_cmd_dir/utils/run_slurm.sh" --config "$_slurm_conf")
    if [ "${force:-false}" = true ]; then cpu_cmd+=(--redo); fi
    gpu_cmd=("${cpu_cmd[@]}" --gpu 1 --num-threads 4)
    ;;
  *)
    echo "cmd.sh: unknown backend '$backend' (local or slurm)" >&2
    exit 2
    ;;
esac
unset _cmd_dir _slurm_conf
