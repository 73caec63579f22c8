#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for the Slurm executor's
# tests and benchmarks: munge + slurmctld + slurmd from Debian's packages, two
# fake GPUs (character devices with no driver behind them) so `--gres=gpu:N`
# and CUDA_VISIBLE_DEVICES can be tested without hardware.
#
#   scripts/slurm-local.sh install   apt-get the packages (needs root)
#   scripts/slurm-local.sh start     install if missing, write the config, start the daemons, wait until the node is idle
#   scripts/slurm-local.sh stop      cancel jobs, stop the daemons
#   scripts/slurm-local.sh status    print sinfo
#
# The cluster is described in docs/slurm.md, "Testing and CI". State lives under
# $SMKE_SLURM_DIR (default /var/lib/smke-slurm); the jobcomp file there keeps
# one line per finished job after squeue has forgotten it.
set -euo pipefail

DIR="${SMKE_SLURM_DIR:-/var/lib/smke-slurm}"
CONF_DIR=/etc/slurm
NODE="$(hostname -s)"
GPUS="${SMKE_SLURM_GPUS:-2}"

log() { printf 'slurm-local: %s\n' "$*" >&2; }

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null && command -v munged >/dev/null; then
    return 0
  fi
  log "installing munge, slurmctld, slurmd, slurm-client"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y munge slurmctld slurmd slurm-client >/dev/null 2>&1 || {
    apt-get update >/dev/null 2>&1
    apt-get install -y munge slurmctld slurmd slurm-client >/dev/null
  }
}

write_config() {
  mkdir -p "$DIR"/{state,spool,log,gpu} "$CONF_DIR"
  # The node's hostname must resolve, or slurmd cannot register.
  getent hosts "$NODE" >/dev/null || echo "127.0.1.1 $NODE" >>/etc/hosts

  # Fake GPUs: gres.conf needs real character devices (major 195 is nvidia's).
  local gres_lines="" i
  for ((i = 0; i < GPUS; i++)); do
    [ -c "$DIR/gpu/nvidia$i" ] || mknod -m 0666 "$DIR/gpu/nvidia$i" c 195 "$i"
    gres_lines+="NodeName=$NODE Name=gpu File=$DIR/gpu/nvidia$i"$'\n'
  done
  printf '%s' "$gres_lines" >"$CONF_DIR/gres.conf"

  # The node line comes from slurmd -C (a mismatch drains the node), with ~10% memory headroom.
  local hw cpus mem
  hw="$(slurmd -C | head -n 1)"
  cpus="$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")"
  mem="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")"
  mem=$((mem * 9 / 10))
  local hwrest
  hwrest="$(sed -e 's/^NodeName=[^ ]* //' -e 's/ RealMemory=[0-9]*//' <<<"$hw")"
  # Job slots: at least SMKE_SLURM_CPUS (default 8) even on a 2-core machine, so the tests' trivial
  # jobs (and a sleeping time-limit test) run side by side as on a real node. The config wins over
  # the detected hardware (SlurmdParameters=config_overrides), so the node is not drained for it.
  local slots="${SMKE_SLURM_CPUS:-8}"
  if [ "$cpus" -lt "$slots" ]; then
    hwrest="CPUs=$slots Boards=1 SocketsPerBoard=1 CoresPerSocket=$slots ThreadsPerCore=1"
    cpus=$slots
  fi

  cat >"$CONF_DIR/slurm.conf" <<CONF
ClusterName=smke-local
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MailProg=/bin/true
SlurmdParameters=config_overrides
# A job without --mem gets its CPUs' share of memory, not the whole node (which would run jobs one at a time).
SchedulerParameters=batch_sched_delay=0
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.log
MinJobAge=300
GresTypes=gpu
NodeName=$NODE $hwrest RealMemory=$mem Gres=gpu:$GPUS State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=$((mem / cpus))
CONF
  : "$cpus"
}

start_munge() {
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  if [ ! -f /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
  fi
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid \
      --log-file=/var/log/munge/munged.log --seed-file=/var/lib/munge/munged.seed
  fi
  local i
  for ((i = 0; i < 50; i++)); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  log "munge did not come up; see /var/log/munge/munged.log"
  return 1
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  install_packages
  local before after
  # No config yet on a fresh machine: cat fails, and under pipefail that must not end the script.
  before="$({ cat "$CONF_DIR/slurm.conf" "$CONF_DIR/gres.conf" 2>/dev/null || true; } | md5sum)"
  write_config
  after="$(cat "$CONF_DIR/slurm.conf" "$CONF_DIR/gres.conf" | md5sum)"
  # A running cluster whose config changed (e.g. after updating this script) is restarted: a
  # reconfigure does not resize the node's CPUs. This is a test cluster: its jobs are cancelled.
  if alive "$DIR/slurmctld.pid" && [ "$before" != "$after" ]; then log "config changed: restarting"; stop; fi
  start_munge
  alive "$DIR/slurmctld.pid" || slurmctld
  alive "$DIR/slurmd.pid" || slurmd
  local i state
  for ((i = 0; i < 100; i++)); do
    state="$(sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null || true)"
    case "$state" in
      idle* | mixed* | allocated*) log "node $NODE is $state ($GPUS fake GPUs)"; return 0 ;;
      drain* | down*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.2
  done
  log "the node did not become idle (state: ${state:-unknown}); logs in $DIR/log"
  return 1
}

stop() {
  scancel --user="$(id -un)" >/dev/null 2>&1 || true
  local f pid i
  for f in "$DIR/slurmd.pid" "$DIR/slurmctld.pid"; do
    if alive "$f"; then
      pid="$(cat "$f")"
      kill "$pid" 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  done
  if [ -f /run/munge/munged.pid ]; then kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true; fi
  log "stopped"
}

case "${1:-}" in
  install) install_packages ;;
  start) start ;;
  stop) stop ;;
  status) sinfo -N -l ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
