#!/usr/bin/env bash
# slurm-localhost.sh: a real one-node Slurm cluster on this machine, for the tests and for
# trying the recipes' Slurm backend (docs/scaling.md).
#
#   scripts/slurm-localhost.sh start    install slurm-wlm + munge if missing (apt-get, root),
#                                       write DIR/slurm.conf for this machine, start munged,
#                                       slurmctld and slurmd, wait until the node is idle
#   scripts/slurm-localhost.sh status   the daemons' pids and `sinfo`; status 0 when the node is up
#   scripts/slurm-localhost.sh stop     cancel the cluster's jobs, stop the daemons by the pids
#                                       in their pid files (munged only if this script started it)
#   scripts/slurm-localhost.sh conf     print the path of DIR/slurm.conf
#
# DIR is $ASCTOOL_SLURM_DIR (default: ${TMPDIR:-/tmp}/asctool-slurm): configuration, state,
# spool, pid files and daemon logs all live there. After `start`, point the Slurm commands at
# the cluster with  export SLURM_CONF=DIR/slurm.conf  (start prints the line).
# The node has this machine's cores (`slurmd -C`) and 90 % of its memory; one partition,
# "debug", the default. Daemons run as root, without systemd and without cgroups
# (proctrack/linuxproc, task/none): a test cluster, not a production setup.
#
# Exit status: 0 done; 1 a daemon did not start or the node did not become idle (the
# daemon logs' last lines are printed); 3 Slurm or munge are missing and cannot be
# installed here (not root, or apt-get failed): the message says why, and callers such as
# tests/test_slurm.py skip on it.
set -euo pipefail

dir="${ASCTOOL_SLURM_DIR:-${TMPDIR:-/tmp}/asctool-slurm}"
conf="$dir/slurm.conf"
wait_s="${ASCTOOL_SLURM_WAIT:-60}"

die() { echo "slurm-localhost: $*" >&2; exit 1; }
cannot() { echo "slurm-localhost: cannot install: $*" >&2; exit 3; }

alive() {  # alive PIDFILE: the pid in PIDFILE is a live process
  local pid
  [ -s "$1" ] || return 1
  pid="$(cat "$1")"
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

install() {
  local missing=()
  command -v slurmctld >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin"
  for tool in slurmctld slurmd sbatch munged; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || cannot "${missing[*]} missing and not root (apt-get install slurm-wlm munge needs root)"
  command -v apt-get >/dev/null 2>&1 || cannot "${missing[*]} missing and no apt-get on this machine"
  echo "slurm-localhost: installing slurm-wlm and munge (apt-get)" >&2
  # bounded: a mirror that does not answer must not hold a CI job (timeout's status 124 is a failure)
  if ! { timeout 240 apt-get update -qq \
         && DEBIAN_FRONTEND=noninteractive timeout 360 apt-get install -y -qq slurm-wlm munge; } \
      >"${TMPDIR:-/tmp}/slurm-localhost-apt.log" 2>&1; then
    cannot "apt-get install slurm-wlm munge failed or took over 10 min: $(tail -n 1 "${TMPDIR:-/tmp}/slurm-localhost-apt.log")"
  fi
  for tool in slurmctld slurmd sbatch munged; do
    command -v "$tool" >/dev/null 2>&1 || cannot "$tool still missing after apt-get install"
  done
}

start_munge() {
  if [ -S /run/munge/munge.socket.2 ] && munge -n </dev/null >/dev/null 2>&1; then
    return 0   # a munged already answers (started by the system or by an earlier start)
  fi
  [ "$(id -u)" -eq 0 ] || die "munged is not running and starting it needs root"
  mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
  # munged forks and writes its pid file itself
  if command -v runuser >/dev/null 2>&1 && id munge >/dev/null 2>&1; then
    runuser -u munge -- munged --force
  else
    munged --force
  fi
  cp /run/munge/munged.pid "$dir/munged.pid"   # ours to stop
  local i
  for ((i = 0; i < 20; i++)); do
    munge -n </dev/null >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  die "munged did not answer (see /var/log/munge/munged.log)"
}

write_conf() {
  local host node mem
  host="$(hostname -s)"
  # slurmd -C: this machine's CPUs, sockets, cores, threads and memory as slurmd sees them
  node="$(slurmd -C | head -n 1)"
  [[ $node == NodeName=* ]] || die "slurmd -C gave no node line: $node"
  mem="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")"
  node="${node/ RealMemory=$mem/} RealMemory=$((mem * 9 / 10))"
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  cat >"$conf.tmp" <<EOF
# one-node test cluster written by scripts/slurm-localhost.sh; state, spool, pids, logs in $dir
ClusterName=asctool
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=${ASCTOOL_SLURMCTLD_PORT:-6817}
SlurmdPort=${ASCTOOL_SLURMD_PORT:-6818}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=300
KillWait=5
$node State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$conf.tmp" "$conf"
}

node_state() {  # empty (status 0) while slurmctld does not answer yet: the callers retry
  { SLURM_CONF="$conf" timeout 15 sinfo -h -N -o '%T' 2>/dev/null || true; } | head -n 1
}

show_logs() {
  local f
  for f in "$dir/log/slurmctld.log" "$dir/log/slurmd.log"; do
    [ -f "$f" ] || continue
    echo "slurm-localhost: last lines of $f:" >&2
    tail -n 8 "$f" | sed 's/^/    /' >&2
  done
}

cmd_start() {
  install
  mkdir -p "$dir"
  if alive "$dir/slurmctld.pid" && alive "$dir/slurmd.pid"; then
    echo "slurm-localhost: already running (SLURM_CONF=$conf)" >&2
  else
    [ "$(id -u)" -eq 0 ] || die "starting slurmctld and slurmd as configured here needs root"
    start_munge
    write_conf
    export SLURM_CONF="$conf"
    alive "$dir/slurmctld.pid" || slurmctld -f "$conf" || { show_logs; die "slurmctld did not start"; }
    alive "$dir/slurmd.pid" || slurmd -f "$conf" || { show_logs; die "slurmd did not start"; }
  fi
  local state="" name deadline=$((SECONDS + wait_s))
  while :; do
    state="$(node_state)"
    case "$state" in
      idle|mixed|allocated) break ;;
    esac
    for name in slurmctld slurmd; do   # a daemon that wrote its pid file and exited will not come up
      if [ -s "$dir/$name.pid" ] && ! alive "$dir/$name.pid"; then show_logs; die "$name exited while starting"; fi
    done
    [ "$SECONDS" -lt "$deadline" ] || break
    sleep 0.5
  done
  case "$state" in
    idle|mixed|allocated) ;;
    *) show_logs; die "the node is '${state:-not listed}' after ${wait_s} s, not idle" ;;
  esac
  echo "slurm-localhost: node $(hostname -s) $state, partition debug; use it with:" >&2
  echo "export SLURM_CONF=$conf"
}

stop_pidfile() {  # stop_pidfile NAME PIDFILE: TERM the pid, wait up to 10 s, then KILL
  local pid i
  alive "$2" || { rm -f "$2"; return 0; }
  pid="$(cat "$2")"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 20; i++)); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$2"; return 0; }
    sleep 0.5
  done
  echo "slurm-localhost: $1 (pid $pid) did not stop on TERM; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$2"
}

cmd_stop() {
  if alive "$dir/slurmctld.pid"; then
    # the cluster is ours: its jobs go with it
    local jobs=()
    mapfile -t jobs < <(SLURM_CONF="$conf" squeue -h -o '%A' 2>/dev/null)
    if [ ${#jobs[@]} -gt 0 ]; then SLURM_CONF="$conf" scancel --quiet "${jobs[@]}" || true; fi
  fi
  stop_pidfile slurmd "$dir/slurmd.pid"
  stop_pidfile slurmctld "$dir/slurmctld.pid"
  if [ -f "$dir/munged.pid" ]; then
    stop_pidfile munged "$dir/munged.pid"
  fi
  echo "slurm-localhost: stopped" >&2
}

cmd_status() {
  local up=0 name
  for name in munged slurmctld slurmd; do
    if alive "$dir/$name.pid"; then
      echo "$name: pid $(cat "$dir/$name.pid")"
    else
      echo "$name: not running (from $dir)"
    fi
  done
  if alive "$dir/slurmctld.pid"; then
    SLURM_CONF="$conf" sinfo -N || up=1
    case "$(node_state)" in idle|mixed|allocated) ;; *) up=1 ;; esac
  else
    up=1
  fi
  return "$up"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  conf) echo "$conf" ;;
  *) echo "usage: $0 start|stop|status|conf" >&2; exit 2 ;;
esac
