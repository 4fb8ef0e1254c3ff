#!/bin/sh
# Stress in the lab guest (run by test/kpatch-stress.test.ts): one reader per CPU, pinned with
# taskset, reads /proc/cmdline (cmdline_proc_show, the function the patches replace) in a loop
# and checks every answer against the allowed ones, while patches are loaded and unloaded.
# usage: kpatch-stress.sh sample|replace CYCLES EVERY [BURST]
# Cycle 1, the last cycle and every EVERY-th use the real `kpatch load`/`kpatch unload` (Node in
# the guest: seconds a call under TCG); the others drive the kernel directly with busybox, as
# kpatch does: insmod, wait for /sys/kernel/livepatch/<m>/transition to read 0,
# `echo 0 > enabled`, wait for the patch to be freed (its directory goes), rmmod.
# Prints one "STRESS key=value ..." line; exits 1 on any failed command or wrong answer.
mode=$1 cycles=$2 every=$3 BURST=${4:-20}
LP=/sys/kernel/livepatch
orig=$(cat /proc/cmdline)
case $mode in
  sample) new1="this has been live patched" new2=$new1 ;;
  replace) new1="kpatch-replace v9" new2="kpatch-replace v10" ;;
  *) echo "usage: $0 sample|replace CYCLES EVERY" >&2; exit 2 ;;
esac

# Guest uptime in centiseconds (/proc/uptime has two decimals).
now() { read -r u _ </proc/uptime; echo "${u%.*}${u#*.}"; }
# Waits (up to 60 s) until patch $1's transition reads 0 or its directory is gone.
wait_transition() {
  n=0
  while read -r v 2>/dev/null <"$LP/$1/transition" && [ "$v" != 0 ]; do
    n=$((n+1)); [ "$n" -gt 600 ] && { echo "$1: transition still 1 after 60 s"; return 1; }
    sleep 0.1
  done
}
# Waits (up to 60 s) until patch $1 is freed: its directory is gone.
wait_gone() {
  n=0
  while [ -e "$LP/$1" ]; do
    n=$((n+1)); [ "$n" -gt 600 ] && { echo "$1: still in $LP after 60 s"; return 1; }
    sleep 0.1
  done
}
# rmmod, retried for up to 10 s: the core drops its module reference just after the patch's
# directory goes.
rmmod_retry() {
  n=0
  until rmmod "$1" 2>/dev/null; do
    n=$((n+1)); [ "$n" -gt 100 ] && { rmmod "$1"; return 1; }
    sleep 0.1
  done
}
direct_load() { insmod "$1.ko" && wait_transition "$(echo "$1" | tr - _)"; }
direct_unload() { echo 0 >"$LP/$1/enabled" && wait_transition "$1" && wait_gone "$1" && rmmod_retry "$1"; }
# Loads the atomic-replace module $1 over the loaded $2, and removes $2's module (replaced: freed
# by the core once $1's transition ends, nothing to disable).
direct_replace() {
  insmod "$1.ko" && wait_transition "$(echo "$1" | tr - _)" && wait_gone "$2" && rmmod_retry "$2"
}
kpatch_replace() { kpatch load "$1.ko" >/dev/null && kpatch unload "$2" >/dev/null; }

# One step: "what" names it; counts ops and failures.
ops=0 failed=0
step() {
  what=$1; shift
  ops=$((ops+1))
  "$@" || { failed=$((failed+1)); echo "cycle $i ($kind): $what failed"; }
}

ncpu=$(nproc)
before=$(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' ')
rm -f /tmp/stress.stop /tmp/stress.w.* /tmp/stress.f.* /tmp/stress.wrong
cpu=0
while [ "$cpu" -lt "$ncpu" ]; do
  # ash builtins only in the loop (read, test, case, arithmetic): no fork per call. After every
  # $BURST reads a reader sleeps 1 ms (a read with a timeout on a FIFO nobody writes), so its
  # vCPU halts now and then. Under TCG thread=single both vCPUs share one host thread, switched
  # on a halt or on QEMU's round-robin kick: each text_poke_bp sync IPI (3 a site; the livepatch
  # core rewrites the 228 cond_resched static-call sites at a transition's start, and at its end
  # sched_dynamic_klp_disable re-applies preempt=voluntary: those 228, and the 437
  # preempt_schedule, 852 preempt_schedule_notrace and 1 irqentry_exit_cond_resched sites twice)
  # waited for the other vCPU's slice, and a transition took ~33 s with readers that never sleep
  # (0.4 s without readers; the insmod's stack was in sched_dynamic_klp_disable).
  taskset -c "$cpu" sh -c '
    o=0 n=0 bad=0 k=0
    mkfifo /tmp/stress.f.$4 && exec 3<>/tmp/stress.f.$4
    while [ ! -e /tmp/stress.stop ]; do
      read -r l </proc/cmdline
      case "$l" in
        "$1") o=$((o+1)) ;;
        "$2"|"$3") n=$((n+1)) ;;
        *) bad=$((bad+1)); echo "cpu $4: wrong answer: $l" >>/tmp/stress.wrong ;;
      esac
      k=$((k+1)); [ "$k" -ge "$5" ] && { k=0; read -r -t 0.001 _ <&3; }
    done
    echo "$o $n $bad" >/tmp/stress.w.$4' reader "$orig" "$new1" "$new2" "$cpu" "$BURST" &
  cpu=$((cpu+1))
done

start=$(now)
i=0 kind=kpatch kcycles=0 dcycles=0 kcs=0 dcs=0
[ "$mode" = replace ] && step "load v9" kpatch load kpatch-replace-v9.ko
while [ "$i" -lt "$cycles" ]; do
  i=$((i+1))
  if [ "$i" -eq 1 ] || [ "$i" -eq "$cycles" ] || [ $((i % every)) -eq 0 ]; then kind=kpatch; else kind=direct; fi
  t0=$(now)
  case $mode-$kind in
    sample-kpatch)
      step load kpatch load livepatch-sample.ko
      step unload kpatch unload livepatch_sample ;;
    sample-direct)
      step load direct_load livepatch-sample
      step unload direct_unload livepatch_sample ;;
    # v10 replaces v9 and v9's module is removed, then v9 replaces v10 the same way.
    replace-kpatch)
      step "v10 over v9" kpatch_replace kpatch-replace-v10 kpatch_replace_v9
      step "v9 over v10" kpatch_replace kpatch-replace-v9 kpatch_replace_v10 ;;
    replace-direct)
      step "v10 over v9" direct_replace kpatch-replace-v10 kpatch_replace_v9
      step "v9 over v10" direct_replace kpatch-replace-v9 kpatch_replace_v10 ;;
  esac
  dt=$(($(now) - t0))
  if [ "$kind" = kpatch ]; then kcycles=$((kcycles+1)) kcs=$((kcs+dt)); else dcycles=$((dcycles+1)) dcs=$((dcs+dt)); fi
  echo "stress: cycle $i $kind $((dt/100)).$((dt%100/10)) s" >/dev/console
done
kind=kpatch
[ "$mode" = replace ] && step "unload v9" kpatch unload kpatch_replace_v9
cs=$(($(now) - start))
touch /tmp/stress.stop
wait

old=0 new=0 wrong=0
for f in /tmp/stress.w.*; do
  read -r o n b <"$f"
  old=$((old+o)) new=$((new+n)) wrong=$((wrong+b))
done
readers=$(ls /tmp/stress.w.* | wc -l)
after=$(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' ')
# A module left behind: in lsmod now and not before, or anything livepatch-like at all.
leaked=$({
  for m in $after; do case " $before " in *" $m "*) ;; *) echo "$m" ;; esac; done
  lsmod | grep -i -e livepatch -e kpatch | cut -d' ' -f1
} | sort -u | tr '\n' ',')
patches=$(ls $LP | tr '\n' ',')
[ -f /tmp/stress.wrong ] && head -5 /tmp/stress.wrong
secs() { echo "$(($1/100)).$(($1%100/10))"; }
echo "STRESS mode=$mode cycles=$cycles cpus=$ncpu readers=$readers calls=$((old+new+wrong)) old=$old new=$new" \
  "wrong=$wrong ops=$ops failed=$failed leaked=${leaked:-none} patches=${patches:-none}" \
  "kpatch_cycles=$kcycles kpatch_s=$(secs $kcs) direct_cycles=$dcycles direct_s=$(secs $dcs) seconds=$(secs $cs)"
[ "$wrong" -eq 0 ] && [ "$failed" -eq 0 ] && [ -z "$leaked" ] && [ -z "$patches" ] && [ "$readers" -eq "$ncpu" ]
