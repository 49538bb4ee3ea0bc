#!/bin/busybox sh
# The portable machine's init (L1, Debian's kernel under QEMU/TCG with SVM). It loads the
# modules KVM and the shares need, mounts the host's / read-only over 9p under a tmpfs
# overlay (writable in memory), mounts the host directories the caller asked for read-write
# at their own paths, then chroots into that tree and runs the command from the control
# share in the caller's directory. ttyS0 is the command's stdin and stdout, ttyS1 its
# stderr, ttyS2 this script's and the kernel's log. The exit status goes to the control
# share; then L1 powers off.
/bin/busybox mkdir -p /proc /sys /dev /tmp /bin /sbin /usr/bin /usr/sbin /lower /ctl /newroot
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Module parameters from the command line: portable.kvm_amd="vgif=0 ..." and the like.
kvm_amd_params=""
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    portable.kvm_amd=*) kvm_amd_params="$(echo "${arg#portable.kvm_amd=}" | tr , ' ')" ;;
  esac
done
for m in $(cat /modules/order); do
  params=""
  [ "$m" = kvm_amd.ko ] && params="$kvm_amd_params"
  insmod "/modules/$m" $params || echo "portable: insmod $m failed"
done
p9="trans=virtio,version=9p2000.L,msize=512000"
mount -t 9p -o "$p9" ctl /ctl || { echo "portable: no control share"; poweroff -f; }
fail() {
  echo "portable: $*" | tee -a /ctl/log
  echo 125 > /ctl/status
  sync
  poweroff -f
}
mount -t tmpfs -o size=90% tmpfs /tmp || fail "tmpfs failed"
mount -t 9p -o "$p9,ro,cache=loose" hostroot /lower || fail "cannot mount the host's / over 9p"
mkdir -p /tmp/upper /tmp/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/tmp/upper,workdir=/tmp/work /newroot ||
  fail "overlay mount failed"
for d in proc sys dev; do mount --bind /$d /newroot/$d; done
# Read-write host directories: "<tag> <path>" a line.
if [ -f /ctl/shares ]; then
  while read -r tag path; do
    [ -n "$tag" ] || continue
    mkdir -p "/newroot$path" && mount -t 9p -o "$p9" "$tag" "/newroot$path" ||
      fail "cannot mount the host directory $path"
  done < /ctl/shares
fi
mkdir -p /newroot/run/denovm-ctl && mount --bind /ctl /newroot/run/denovm-ctl
# The network, when the caller asked for one: "<address/prefix> <gateway>" (QEMU user mode).
ip link set lo up
if [ -f /ctl/net ]; then
  read -r addr gw < /ctl/net
  ip link set eth0 up && ip addr add "$addr" dev eth0 && ip route add default via "$gw" ||
    fail "cannot bring up the network"
fi
[ -e /dev/kvm ] || fail "no /dev/kvm in the portable machine (kvm_amd did not load)"
cwd=$(cat /ctl/cwd)
# Resident mode (resident.ts): no one command, but spares (spare.ts) in two slots, each
# slot starting its next spare when its last one took a job; the machine powers off when a
# spare reports it idle (or a slot's spares keep dying before they are ready).
if [ -f /ctl/resident ]; then
  mkdir -p /newroot/run/denovm-hostrw
  mount -t 9p -o "$p9" hostrw /newroot/run/denovm-hostrw ||
    fail "cannot mount the host's / read-write"
  warm=/newroot/run/denovm-warm
  mkdir -p $warm/jobs && mkfifo $warm/fifo1 $warm/fifo2 $warm/go $warm/end ||
    fail "cannot make the spares' FIFOs"
  exec 4<> $warm/go 5<> $warm/end
  echo up > /ctl/state
  spare_loop() {
    slot=$1
    exec 3<> $warm/fifo$slot
    # Slot 2 loads while nothing else does: after slot 1's first spare is ready (not when
    # it is restarted after an idle end: $2).
    [ "$slot" = 1 ] || [ -n "$2" ] || read -r _ <&4
    n=${3:-0}
    crashes=0
    went=""
    while :; do
      n=$((n + 1))
      echo 3 > /proc/sys/vm/drop_caches
      # At the lowest priority (a running job keeps the CPU), in the caller's tree; the
      # "exit" line tells this loop that a spare died before it took a job.
      # shellcheck disable=SC2016
      setsid sh -c 'renice -n 19 -p $$ > /dev/null; exec unshare -m --propagation private chroot /newroot /bin/sh -c "cd \"\$1\" && . /run/denovm-ctl/env && /bin/sh /run/denovm-ctl/spare.sh \$2 \$3; echo \"exit \$3\" > /run/denovm-warm/fifo\$2" spare "$0" "$1" "$2"' \
        "$cwd" "$slot" "$n" < /dev/null >> /ctl/spare.log 2>&1 &
      outcome=""
      while read -r what id <&3; do
        [ "$id" = "$n" ] || continue
        if [ "$what" = ready ]; then
          if [ "$slot" = 1 ] && [ -z "$went" ]; then
            echo go >&4
            went=1
          fi
          continue
        fi
        outcome=$what
        break
      done
      case "$outcome" in
        taken | stale) crashes=0 ;;
        idle)
          echo "end $slot idle $n" >&5
          return
          ;;
        *)
          crashes=$((crashes + 1))
          echo "portable: spare $slot.$n ended before taking a job" >> /ctl/log
          if [ $crashes -ge 3 ]; then
            echo "slot $slot gave up" >> /ctl/state
            echo "end $slot failed $n" >&5
            return
          fi
          sleep 1
          ;;
      esac
    done
  }
  # A job still running (a file per job, named by its spare's pid) keeps the machine up.
  jobs_running() {
    for f in $warm/jobs/*; do
      [ -e "$f" ] && [ -d "/proc/${f##*/}" ] && return 0
    done
    return 1
  }
  spare_loop 1 &
  spare_loop 2 &
  failed=0
  while read -r _ slot why n <&5; do
    if [ "$why" = failed ]; then
      failed=$((failed + 1))
      [ $failed -ge 2 ] && { echo failed >> /ctl/state; break; }
    elif jobs_running; then
      # Idle while a job runs (a spare came and went meanwhile): keep the slot going.
      spare_loop "$slot" again "$n" &
    else
      break
    fi
  done
  echo off >> /ctl/state
  sync
  poweroff -f
fi
# The caller's terminal: raw bytes both ways unless it is interactive (then a normal tty
# whose size is the caller's).
if [ -f /ctl/tty ]; then
  stty -F /dev/ttyS0 sane $(cat /ctl/tty)
else
  stty -F /dev/ttyS0 raw -echo
fi
stty -F /dev/ttyS1 raw -echo
run="cd \"$cwd\" && . /run/denovm-ctl/env && exec /bin/sh /run/denovm-ctl/run.sh"
echo "portable: up, running the command"
if [ -f /ctl/stdin ]; then
  # The caller's terminal is the command's controlling tty (Ctrl-C reaches it).
  setsid -c chroot /newroot /bin/sh -c "$run" < /dev/ttyS0 > /dev/ttyS0 2> /dev/ttyS1
else
  setsid chroot /newroot /bin/sh -c "$run" < /dev/null > /dev/ttyS0 2> /dev/ttyS1
fi
echo $? > /ctl/status
sync
poweroff -f
