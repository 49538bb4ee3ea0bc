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
