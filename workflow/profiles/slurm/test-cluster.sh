#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, from Debian's packages (slurm-wlm, munge): what
# a minimal cluster needs, for the tests and for a user who wants to try the SLURM profile.
#   sudo workflow/profiles/slurm/test-cluster.sh start   # prints: export SLURM_CONF=...
#   sudo workflow/profiles/slurm/test-cluster.sh stop
# One node (this host) with all its cores and 90% of its memory, one partition, munge for
# authentication, no accounting database (slurmdbd): job states come from squeue, so finished
# jobs are kept 10 minutes (MinJobAge) for Snakemake's status checks
# (--slurm-status-command squeue). Its files live in $STATE (default /tmp/medmtl-slurm), munge's
# in $MUNGE (a folder the munge user can reach). One such cluster per machine (fixed ports).
set -euo pipefail
STATE=${STATE:-/tmp/medmtl-slurm}
MUNGE=${MUNGE:-/tmp/medmtl-munge}
command=${1:?usage: test-cluster.sh start|stop}

stop() {
  for pid in "$STATE"/slurmd.pid "$STATE"/slurmctld.pid "$MUNGE"/munged.pid; do
    [[ -f $pid ]] && kill "$(cat "$pid")" 2>/dev/null || true
  done
  [[ -L /etc/slurm/slurm.conf && $(readlink /etc/slurm/slurm.conf) == "$STATE/slurm.conf" ]] &&
    rm /etc/slurm/slurm.conf
  sleep 1
}

if [[ $command == stop ]]; then stop; exit 0; fi
[[ $command == start ]] || { echo "unknown command: $command" >&2; exit 2; }
for tool in slurmctld slurmd munged sbatch; do
  command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install slurm-wlm munge" >&2; exit 1; }
done
[[ -f /etc/munge/munge.key ]] || { echo "/etc/munge/munge.key missing: reinstall munge" >&2; exit 1; }

mkdir -p "$STATE"/{ctld,spool} "$MUNGE"
chown munge: "$MUNGE"
chmod 755 "$MUNGE"
host=$(hostname -s)
cpus=$(nproc)
memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) * 9 / 10 / 1024 ))  # MB
cat > "$STATE/slurm.conf" <<CONF
ClusterName=medmtl
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE/munge.socket
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$STATE/slurm.conf
# Job steps (srun inside a job) read the default path, not $SLURM_CONF: link it there, unless
# this machine has a SLURM configuration of its own.
mkdir -p /etc/slurm
if [[ -e /etc/slurm/slurm.conf && ! -L /etc/slurm/slurm.conf ]]; then
  echo "/etc/slurm/slurm.conf exists: this machine has a cluster of its own" >&2; exit 1
fi
ln -sfn "$SLURM_CONF" /etc/slurm/slurm.conf
runuser -u munge -- /usr/sbin/munged --socket="$MUNGE/munge.socket" \
  --pid-file="$MUNGE/munged.pid" --log-file="$MUNGE/munged.log" --seed-file="$MUNGE/seed"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do  # the node registers with the controller
  if sinfo -h -N -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 1
done
echo "the node did not come up; see $STATE/slurmctld.log and $STATE/slurmd.log" >&2
stop
exit 1
