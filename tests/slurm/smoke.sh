#!/usr/bin/env bash
# Smoke test of scripts/slurm-local against the real cluster it starts: up (twice: the second is a
# no-op), jobs submitted over the ssh login node (COMPLETED, FAILED with its exit code, CANCELLED
# by scancel with its process gone), each one's final state in the jobcomp file and `sacct -c`
# after it left squeue, a killed slurmd repaired by `up`, and down (twice). Needs root.
# Exits non-zero at the first failed check. SLURM_SMOKE_KEEP=1 leaves the cluster up at the end.
#   tests/slurm/smoke.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

t_start=$(date +%s%N)
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
ok() { echo "smoke: ok: $*"; }
fail() {
  echo "smoke: FAILED: $*" >&2
  exit 1
}

work=$(mktemp -d /tmp/evald-slurm-smoke.XXXXXX)
cleanup() {
  local rc=$?
  if [ "${SLURM_SMOKE_KEEP:-0}" != 1 ] && [ "$rc" -ne 0 ]; then
    echo "smoke: bringing the cluster down after the failure" >&2
    scripts/slurm-local down >&2 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# wait_for SECONDS DESCRIPTION COMMAND...: retries every 0.5 s.
wait_for() {
  local secs=$1 what=$2 deadline
  shift 2
  deadline=$(( $(date +%s) + secs ))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${secs}s waiting for $what"
    sleep 0.5
  done
}

pids() { cat "$EVALD_SLURM_STATE_DIR"/run/*.pid 2>/dev/null | sort | tr '\n' ' '; }

# --- up, env, idempotence
t=$(date +%s%N)
scripts/slurm-local up
t_up=$(ms_since "$t")
ok "up (${t_up} ms)"
eval "$(scripts/slurm-local env)"
for v in EVALD_SLURM_PARTITION EVALD_SLURM_SSH_HOST EVALD_SLURM_SSH_PORT EVALD_SLURM_SSH_USER \
         EVALD_SLURM_SSH_KEY EVALD_SLURM_SSH_CONFIG EVALD_SLURM_SSH_ALIAS EVALD_SLURM_JOBCOMP \
         EVALD_SLURM_STATE_DIR; do
  [ -n "${!v:-}" ] || fail "env does not export $v"
done
for f in "$EVALD_SLURM_SSH_KEY" "$EVALD_SLURM_SSH_CONFIG"; do [ -r "$f" ] || fail "$f missing"; done
ok "env exports the partition ($EVALD_SLURM_PARTITION), ssh host/port/user/key/config/alias"

before=$(pids)
t=$(date +%s%N)
second=$(scripts/slurm-local up)
t_up2=$(ms_since "$t")
[ "$(pids)" = "$before" ] || fail "a second up changed the daemons' pids ($before -> $(pids))"
if grep -q started <<<"$second"; then fail "a second up started something: $second"; fi
ok "a second up is a no-op (same pids: $before; ${t_up2} ms)"

login() { ssh -F "$EVALD_SLURM_SSH_CONFIG" "$EVALD_SLURM_SSH_ALIAS" "$@" </dev/null; }

state=$(login "sinfo -h -p $EVALD_SLURM_PARTITION -o %T")
[ "$state" = idle ] || fail "sinfo over ssh shows '$state', not idle"
ok "ssh -F \$EVALD_SLURM_SSH_CONFIG $EVALD_SLURM_SSH_ALIAS: sinfo shows the partition idle"

# Explicit options instead of the config file work too (how a user's own ssh setup would look).
ssh -p "$EVALD_SLURM_SSH_PORT" -i "$EVALD_SLURM_SSH_KEY" -o IdentitiesOnly=yes -o BatchMode=yes \
  -o StrictHostKeyChecking=no -o UserKnownHostsFile="$EVALD_SLURM_SSH_KNOWN_HOSTS" -o LogLevel=ERROR \
  "$EVALD_SLURM_SSH_USER@$EVALD_SLURM_SSH_HOST" true </dev/null || fail "ssh with explicit options"
ok "ssh -p/-i $EVALD_SLURM_SSH_USER@$EVALD_SLURM_SSH_HOST works too"

in_squeue() { login "squeue -h -t all -o %i" | grep -qx "$1"; }
gone_from_squeue() { ! in_squeue "$1"; }
jobcomp_state() { grep -E "^JobId=$1 " "$EVALD_SLURM_JOBCOMP" | tail -n1 | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
jobcomp_is() { [ "$(jobcomp_state "$1")" = "$2" ]; }
squeue_state() { login "squeue -h -j $1 -o %T" 2>/dev/null || true; }
is_running() { [ "$(squeue_state "$1")" = RUNNING ]; }

# --- a job that succeeds: its final state after it left squeue
t=$(date +%s%N)
id=$(login "sbatch --parsable -D $work -o hi-%j.out --wrap 'echo hi'")
[[ $id =~ ^[0-9]+$ ]] || fail "sbatch over ssh printed '$id', not a job id"
ok "sbatch --parsable over ssh: job $id"
wait_for 30 "job $id in the jobcomp file as COMPLETED" jobcomp_is "$id" COMPLETED
ok "job $id COMPLETED in $EVALD_SLURM_JOBCOMP after $(ms_since "$t") ms"
[ "$(cat "$work/hi-$id.out")" = hi ] || fail "job $id's output is not 'hi'"
ok "job $id wrote 'hi'"
wait_for 90 "job $id to leave squeue (MinJobAge=$EVALD_SLURM_MIN_JOB_AGE)" gone_from_squeue "$id"
ok "job $id gone from squeue $(ms_since "$t") ms after submission"
line=$(login "sacct -c -n -P -o jobid,state,exitcode -j $id")
[ "$line" = "$id|COMPLETED|0:0" ] || fail "sacct -c for job $id: '$line'"
ok "sacct -c (jobcomp) after the purge: $line"

# --- a job that fails: its exit code
id=$(login "sbatch --parsable -D $work -o /dev/null --wrap 'exit 3'")
wait_for 30 "job $id in the jobcomp file as FAILED" jobcomp_is "$id" FAILED
grep -E "^JobId=$id " "$EVALD_SLURM_JOBCOMP" | grep -q ' ExitCode=3:0' ||
  fail "job $id's jobcomp line has no ExitCode=3:0"
ok "job $id (exit 3) FAILED with ExitCode=3:0"

# --- scancel of a running job: CANCELLED, its process gone
id=$(login "sbatch --parsable -D $work -o /dev/null --wrap 'echo \$\$ > $work/sleep.pid; exec sleep 300'")
wait_for 30 "job $id RUNNING" is_running "$id"
wait_for 10 "job $id's pid file" test -s "$work/sleep.pid"
job_pid=$(cat "$work/sleep.pid")
ok "job $id RUNNING (pid $job_pid)"
t=$(date +%s%N)
login "scancel $id"
wait_for 30 "job $id in the jobcomp file as CANCELLED" jobcomp_is "$id" CANCELLED
process_gone() { ! ps -o stat= -p "$1" | grep -qv Z; }
wait_for 10 "job $id's process $job_pid to be gone" process_gone "$job_pid"
ok "scancel $id: CANCELLED and its process gone after $(ms_since "$t") ms"

# --- a half-dead cluster is repaired by up
slurmd_pid=$(cat "$EVALD_SLURM_STATE_DIR/run/slurmd.pid")
kill -KILL "$slurmd_pid"
t=$(date +%s%N)
out=$(scripts/slurm-local up)
grep -q 'started slurmd' <<<"$out" || fail "up after slurmd was killed did not start it: $out"
[ "$(sinfo -h -N -n "$EVALD_SLURM_NODE" -o %T)" = idle ] || fail "node not idle after the repair"
ok "slurmd killed: up restarted it and the node is idle ($(ms_since "$t") ms)"

# --- down, twice
t=$(date +%s%N)
daemons=$(pids)
if [ "${SLURM_SMOKE_KEEP:-0}" = 1 ]; then
  ok "SLURM_SMOKE_KEEP=1: left the cluster up"
else
  scripts/slurm-local down
  t_down=$(ms_since "$t")
  for p in $daemons; do
    if ps -o stat= -p "$p" | grep -qv Z; then fail "pid $p still alive after down"; fi
  done
  scripts/slurm-local down >/dev/null || fail "a second down failed"
  ok "down stopped pids $daemons (${t_down} ms); a second down is fine"
fi
echo "smoke: all checks passed in $(ms_since "$t_start") ms (up ${t_up} ms, second up ${t_up2} ms)"
