#!/usr/bin/env bash
# evald and a real job under the sandbox deploy/systemd/evald.service asks systemd for (issue 12:
# "hardened without breaking job launches"). CI and this machine have no systemd as PID 1, so the
# test builds the same kernel sandbox with util-linux (unshare, mount, findmnt, setpriv), reading
# the settings from the unit file itself:
#   ProtectSystem=strict   private mount namespace, every mount remounted read-only except the
#                          state dir and ReadWritePaths (stand-in folders under the work dir) and
#                          /dev, /proc (API file systems, as systemd keeps them)
#   ProtectKernelTunables, ProtectControlGroups   /sys (with /sys/fs/cgroup) and /proc/sys read-only
#   ProtectHostname        a UTS namespace of its own
#   PrivateTmp=yes         fresh tmpfs on /tmp and /var/tmp
#   ProtectHome=read-only  /home, /root, /run/user read-only (by the remount; checked)
#   User=, Group=          nobody/nogroup stand in for evald/evald
#   NoNewPrivileges=yes, CapabilityBoundingSet= (empty), AmbientCapabilities= (empty)
#                          setpriv --no-new-privs --bounding-set=-all --inh-caps=-all
#   UMask=, StateDirectory=, StateDirectoryMode=   umask and the state dir's mode
# Not emulated, because they need seccomp filters (or device cgroups) these tools cannot set up:
# RestrictSUIDSGID, LockPersonality, RestrictRealtime, RestrictNamespaces, SystemCallArchitectures,
# RestrictAddressFamilies, and the system-call and device parts of ProtectKernelModules,
# ProtectKernelLogs and ProtectClock (their capability part is covered by the empty bounding set).
# A sandbox setting the unit gains or changes that this list does not know fails the test.
#
# Inside the sandbox: evald on the stand-in state dir (its unix socket there). Outside: a
# reference model (ref_endpoint) and evalctl as root submitting the arith task with output_dir
# under <state>/runs and under the ReadWritePaths stand-in; the results must be readable, the
# job's files owned by the unprivileged user with modes the umask allows; an output_dir outside the
# writable paths must fail with a clear error; writes to /, /usr, /root fail inside the sandbox.
#
# Needs root and permission to create mount namespaces; otherwise exits 77 (skipped, reason
# printed), or 1 with EVALD_REQUIRE_SANDBOX=1 (scripts/test sets it when run as root, as CI is).
#   tests/deploy/hardened_unit_test.sh SOURCE_DIR BIN_DIR [WORK_PARENT]
set -euo pipefail

src=$(cd "${1:?usage: $0 SOURCE_DIR BIN_DIR [WORK_PARENT]}" && pwd)
bin=$(cd "${2:?usage: $0 SOURCE_DIR BIN_DIR [WORK_PARENT]}" && pwd)
work_parent=$(cd "${3:-.}" && pwd)
unit=$src/deploy/systemd/evald.service
data=$src/tests/integration/data
run_user=nobody
run_group=nogroup

say() { echo "hardened-unit: $*"; }
fail() {
  echo "hardened-unit: FAILED: $*" >&2
  exit 1
}
skip() {
  echo "hardened-unit: SKIPPED: $*"
  [ "${EVALD_REQUIRE_SANDBOX:-0}" = 1 ] && fail "EVALD_REQUIRE_SANDBOX=1 but: $*"
  exit 77
}

[ "$(id -u)" = 0 ] || skip "needs root (a mount namespace, then setpriv to an unprivileged user)"
for tool in unshare mount findmnt setpriv nsenter timeout; do
  command -v "$tool" >/dev/null || skip "$tool not found (util-linux, coreutils)"
done
unshare --mount --uts --propagation private true 2>/dev/null ||
  skip "creating a mount namespace is not permitted here (no CAP_SYS_ADMIN?)"
if ! getent passwd "$run_user" >/dev/null || ! getent group "$run_group" >/dev/null; then
  skip "no user $run_user or group $run_group"
fi
case $work_parent/ in
  /run/user/*) fail "work dir parent $work_parent is hidden in the sandbox; pass another" ;;
esac
[ -d /mnt ] || skip "no /mnt to stage the sandbox's private /tmp on"

# --- the unit's settings ---------------------------------------------------------------------
[ -f "$unit" ] || fail "no unit file $unit"
# KEY=VALUE lines of [Service], comments dropped.
service=$(awk '/^\[/ { s = ($0 == "[Service]") } s && /^[A-Za-z]+=/' "$unit")
values() { printf '%s\n' "$service" | sed -n "s/^$1=//p"; }
require() {  # KEY EXPECTED: the unit must set KEY to EXPECTED exactly once
  local got
  got=$(values "$1")
  if [ "$(values "$1" | wc -l)" != 1 ] || [ "$got" != "$2" ]; then
    fail "the emulation depends on $1=$2 in $unit, found '${got:-<missing>}'; update this test"
  fi
}
require ProtectSystem strict
require PrivateTmp yes
require ProtectHome read-only
require NoNewPrivileges yes
require CapabilityBoundingSet ''
require AmbientCapabilities ''
require ProtectKernelTunables yes
require ProtectControlGroups yes
require ProtectHostname yes
require StateDirectory evald
if [ -z "$(values User)" ] || [ -z "$(values Group)" ]; then
  fail "the unit sets no User= or Group="
fi
umask_value=$(values UMask)
state_mode=$(values StateDirectoryMode)
[[ $umask_value =~ ^0[0-7]{3}$ ]] || fail "UMask='$umask_value' in the unit: expected 0NNN"
[[ $state_mode =~ ^0[0-7]{3}$ ]] || fail "StateDirectoryMode='$state_mode': expected 0NNN"
# Every sandbox-related key the unit sets must be emulated above or knowingly left out.
known=" ProtectSystem ReadWritePaths PrivateTmp ProtectHome User Group NoNewPrivileges
  CapabilityBoundingSet AmbientCapabilities UMask StateDirectory StateDirectoryMode
  ProtectKernelTunables ProtectControlGroups ProtectHostname
  ProtectKernelModules ProtectKernelLogs ProtectClock
  RestrictSUIDSGID LockPersonality RestrictRealtime RestrictNamespaces SystemCallArchitectures
  RestrictAddressFamilies "
known=" $(tr -s ' \n' '  ' <<<"$known") "
sandbox_keys='^(Protect|Private|Restrict|ReadWrite|ReadOnly|Inaccessible|ExecPaths|NoExecPaths'
sandbox_keys+='|TemporaryFileSystem|Bind|Capability|Ambient|NoNewPriv|SystemCall|LockPersonality'
sandbox_keys+='|MemoryDeny|User|Group|DynamicUser|SupplementaryGroups|UMask|StateDirectory'
sandbox_keys+='|RuntimeDirectory|CacheDirectory|LogsDirectory|RootDirectory|RootImage|MountAPIVFS'
sandbox_keys+='|ProcSubset|Personality|DeviceAllow|DevicePolicy|SecureBits|RemoveIPC|IPAddress)'
for key in $(printf '%s\n' "$service" | cut -d= -f1 | grep -E "$sandbox_keys" | sort -u); do
  [[ $known == *" $key "* ]] ||
    fail "the unit sets $key, which this test neither emulates nor lists as not emulated"
done
# ReadWritePaths: each entry gets a stand-in folder (a leading '-' only means "may be missing").
rw_paths=$(values ReadWritePaths | tr ' ' '\n' | sed 's/^-//' | grep . || true)
[ -n "$rw_paths" ] || fail "the unit has no ReadWritePaths=; this test submits a job into one"
say "unit: ProtectSystem=strict, UMask=$umask_value, StateDirectoryMode=$state_mode," \
  "ReadWritePaths=$(paste -sd' ' <<<"$rw_paths")"

# --- stand-ins, model, cleanup ---------------------------------------------------------------
work=$(mktemp -d "$work_parent/hardened-unit.XXXXXX")
chmod 0755 "$work"
state=$work/state           # /var/lib/evald
mkdir -m "$state_mode" "$state"
chown "$run_user:$run_group" "$state"
rw_standins=()
for p in $rw_paths; do
  d=$work/rw$(echo "$p" | tr / _)
  mkdir -m 0750 "$d"
  chown "$run_user:$run_group" "$d"
  rw_standins+=("$d")
done
rw=${rw_standins[0]}
# A file in the host's /tmp that PrivateTmp must hide.
host_tmp_marker=$(mktemp /tmp/evald-hardened-marker.XXXXXX)
sandbox_pid=
evald_pid=
model_pid=
cleanup() {
  local rc=$?
  set +e  # a process that is already gone must not end the cleanup
  [ -n "$evald_pid" ] && kill "$evald_pid" 2>/dev/null
  [ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null
  [ -n "$model_pid" ] && kill "$model_pid" 2>/dev/null
  wait 2>/dev/null
  rm -f "$host_tmp_marker"
  if [ "$rc" = 0 ]; then
    rm -rf "$work"
  else
    say "kept for a look: $work (sandbox.log: the sandbox's checks, then evald's log)"
    tail -n 30 "$work/sandbox.log" 2>/dev/null | sed 's/^/  sandbox.log: /' >&2
  fi
}
trap cleanup EXIT

wait_for() {  # SECONDS WHAT COMMAND...
  local secs=$1 what=$2 deadline
  shift 2
  deadline=$(($(date +%s) + secs))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${secs}s waiting for $what"
    sleep 0.1
  done
}

"$bin/ref_endpoint" --host 127.0.0.1 --port 0 --port-file "$work/model.port" \
  --keys "$data/arith_keys.jsonl" --model-id ref-model >"$work/model.log" 2>&1 &
model_pid=$!
wait_for 10 "ref_endpoint's port file" test -s "$work/model.port"
model_url=http://127.0.0.1:$(cat "$work/model.port")/v1/chat/completions

# The ASan build's evald and evalrun keep scripts/test's sanitizer settings (values without blanks).
sanitizer_env=
for v in ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS; do
  if [ -n "${!v:-}" ]; then sanitizer_env+=" $v=${!v}"; fi
done

# --- the sandbox ------------------------------------------------------------------------------
# Runs as root in the new namespaces, builds the mounts, checks them, then becomes evald.
# shellcheck disable=SC2016  # expanded by the sandbox's bash, from its arguments
sandbox_script='
set -eu
work=$1 state=$2 umask_value=$3 run_user=$4 run_group=$5 bin=$6 marker=$7 sanitizer_env=$8
src=$EVALD_SANDBOX_SRC
shift 8
kept="$state $*"
for d in $kept; do mount --bind "$d" "$d"; done
is_kept() { for d in $kept; do case $1/ in "$d"/*) return 0 ;; esac; done; return 1; }
# ProtectSystem=strict (+ ProtectKernelTunables, ProtectControlGroups for /sys).
findmnt -rn -o TARGET,OPTIONS | sort -u | while read -r t options; do
  t=$(printf "%b" "$t")  # findmnt -r escapes blanks as \x20
  case $t in /dev | /dev/* | /proc | /proc/*) continue ;; esac
  case ,$options, in *,ro,*) continue ;; esac
  is_kept "$t" && continue
  # A mount that went away meanwhile (a podman container of another test ending) needs nothing.
  err=$(mount -o remount,bind,ro "$t" 2>&1) || ! findmnt -rn "$t" >/dev/null ||
    { echo "cannot remount $t read-only: $err" >&2; exit 1; }
done
mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys
# PrivateTmp=yes: a fresh /tmp and /var/tmp. The trees of the test itself (source, binaries, work
# dir and its writable stand-ins) stay at their paths when they live under one of them, as
# ReadWritePaths in a unit would: the tmpfs is built on /mnt with them bound in, then moved.
for d in /tmp /var/tmp; do
  mount -n -t tmpfs -o mode=1777,nosuid,nodev tmpfs /mnt
  for p in $(printf "%s\n" "$src" "$bin" "$work" $kept | awk "{ print length, \$0 }" | sort -n |
      cut -d" " -f2-); do
    case $p/ in "$d"/*) ;; *) continue ;; esac
    mkdir -p "/mnt/${p#"$d"/}" 2>/dev/null || true
    mount -n --bind "$p" "/mnt/${p#"$d"/}"
  done
  mount -n --move /mnt "$d"
done
hostname evald-sandbox
# The sandbox must be real: even root (all capabilities) cannot write these.
for d in / /usr /etc /sys /proc/sys /home /root /run/user; do
  [ -d "$d" ] || continue
  if touch "$d/.evald-sandbox-probe" 2>/dev/null; then
    rm -f "$d/.evald-sandbox-probe"
    echo "SANDBOX-BROKEN: $d is writable" >&2
    exit 1
  fi
  echo "read-only: $d"
done
[ ! -e "$marker" ] || { echo "SANDBOX-BROKEN: /tmp is the host one" >&2; exit 1; }
touch /tmp/probe /var/tmp/probe "$state/.probe" && rm /tmp/probe /var/tmp/probe "$state/.probe"
for d in $*; do touch "$d/.probe" && rm "$d/.probe"; done
echo "writable: /tmp /var/tmp $kept"
# The work dir is read-only now: evald logs to the sandbox log (as to the journal).
echo "evald pid: $$"
umask "$umask_value"
exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
  HOME="$state" USER="$run_user" LOGNAME="$run_user" SHELL=/usr/sbin/nologin \
  STATE_DIRECTORY="$state" $sanitizer_env \
  setpriv --reuid="$run_user" --regid="$run_group" --clear-groups --no-new-privs \
    --bounding-set=-all --inh-caps=-all --ambient-caps=-all -- \
  "$bin/evald" --state-dir "$state" --tick-ms 100
'
EVALD_SANDBOX_SRC=$src unshare --mount --uts --propagation private --fork --kill-child \
  bash -c "$sandbox_script" sandbox "$work" "$state" "$umask_value" "$run_user" "$run_group" \
  "$bin" "$host_tmp_marker" "$sanitizer_env" "${rw_standins[@]}" >"$work/sandbox.log" 2>&1 &
sandbox_pid=$!
export EVALD_ADDR=unix://$state/evald.sock
evald_up() {
  if ! kill -0 "$sandbox_pid" 2>/dev/null; then
    cat "$work/sandbox.log" >&2
    fail "the sandbox or evald exited during start"
  fi
  [ -S "$state/evald.sock" ] && "$bin/evalctl" status >/dev/null 2>&1
}
wait_for 20 "evald in the sandbox to answer" evald_up
evald_pid=$(sed -n 's/^evald pid: //p' "$work/sandbox.log")
grep -v '^{\|^\[' "$work/sandbox.log" | sed 's/^/  sandbox: /'

# evald really runs sandboxed: another mount namespace, the user, no privileges.
status=/proc/$evald_pid/status
[ "$(readlink "/proc/$evald_pid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] ||
  fail "evald shares the test's mount namespace"
[ "$(awk '/^Uid:/ { print $2 }' "$status")" = "$(id -u "$run_user")" ] || fail "evald is not $run_user"
grep -q '^NoNewPrivs:[[:space:]]*1$' "$status" || fail "evald lacks no_new_privs"
grep -q '^CapBnd:[[:space:]]*0000000000000000$' "$status" || fail "evald's bounding set is not empty"
grep -q '^CapEff:[[:space:]]*0000000000000000$' "$status" || fail "evald has capabilities"
[ "$(awk '/^Umask:/ { print $2 }' "$status")" = "$umask_value" ] || fail "evald's umask is not $umask_value"
say "evald pid $evald_pid: uid $run_user, NoNewPrivs 1, CapBnd 0, Umask $umask_value, own mount ns"

# --- jobs ----------------------------------------------------------------------------------
config() {  # NAME OUTPUT_DIR: writes the arith config, prints its path
  local cfg=$work/$1.yaml
  cat >"$cfg" <<EOF
defaults:
  - execution: local
  - deployment: none
  - _self_
execution:
  output_dir: $2
  mode: parallel
target:
  api_endpoint:
    url: $model_url
    model_id: ref-model
    api_key_name: null
evaluation:
  overrides:
    config.params.limit_samples: 10
    config.params.parallelism: 4
  tasks:
    - name: arith
      task_file: $data/arith_task.yaml
EOF
  echo "$cfg"
}
submit_ok() {  # NAME OUTPUT_DIR: the job must succeed and its results be readable
  local out id
  out=$(timeout 60 "$bin/evalctl" submit "$(config "$1" "$2")" --wait --json 2>&1) ||
    fail "submit with output_dir $2 failed (exit $?): $out"
  id=$(grep -o '"invocation_id": *"[^"]*"' <<<"$out" | head -n1 | sed 's/.*"\([^"]*\)"$/\1/')
  [ -n "$id" ] || fail "no invocation id in: $out"
  results=$(timeout 20 "$bin/evalctl" results "$id" 2>&1) || fail "evalctl results $id: $results"
  grep -q exact_match <<<"$results" || fail "no exact_match in the results of $id: $results"
  # Written by the unprivileged user, and nothing beyond what the umask allows.
  local foreign loose
  foreign=$(find "$2" ! -user "$run_user" | head -n5)
  [ -z "$foreign" ] || fail "files in $2 not owned by $run_user: $foreign"
  loose=$(find "$2" -perm "/$(printf '%o' $((8#$umask_value)))" -printf '%m %p\n' | head -n5)
  [ -z "$loose" ] || fail "files in $2 with bits that UMask=$umask_value clears: $loose"
  say "ok: job $id into $2 succeeded, files $run_user's, no mode bits beyond the umask;" \
    "results: $(grep -m1 exact_match <<<"$results" | tr -s ' ')"
}
submit_ok state-runs "$state/runs/arith"
submit_ok rw-path "$rw/arith"

# Outside the writable paths: a clear failure, not a hang and not a success.
for denied in /opt/evald-hardened-test /etc/evald-hardened-test; do
  rc=0
  out=$(timeout 60 "$bin/evalctl" submit "$(config denied "$denied")" --wait 2>&1) || rc=$?
  [ "$rc" != 124 ] || fail "submit with output_dir $denied hung (timeout 60 s)"
  [ "$rc" != 0 ] || fail "submit with output_dir $denied succeeded: $out"
  grep -qi 'read-only file system' <<<"$out" ||
    fail "submit with output_dir $denied failed (exit $rc) without saying why: $out"
  [ ! -e "$denied" ] || fail "$denied was created on the host"
  say "ok: output_dir $denied refused (exit $rc): $(grep -i -m1 'read-only' <<<"$out")"
done
say "passed"
