#!/usr/bin/env bash
# conformance/run.sh - run the same kernel-style C check programs in a real
# Linux kernel and on libkthread, and compare what they print.
#
#   bash conformance/run.sh
#
# 1. Installs what it needs with apt, once (only the packages missing).
# 2. Builds each conformance/kt_*.c as an out-of-tree module for the
#    installed kernel image's headers (not the host's running kernel), and
#    as a user-space program against capi/include/kthread.h and
#    libkthread.a (cargo build --release -p kthread-capi).
# 3. Boots that kernel in qemu (-smp 2, no network) with a busybox initramfs
#    that insmods the modules and powers off; tries KVM, falls back to TCG.
#    Every check line of a module is printed as "KTC ok|FAIL NAME".
# 4. Runs the user-space programs, and prints both results side by side.
#
# Exit status: 0 when every check is "ok" on both sides; 1 on any difference,
# any FAIL, a crash or a hang (every wait is bounded); 2 when the setup
# failed (packages, builds, no kernel image).
#
# Environment:
#   CONFORMANCE_SKIP_APT=1      do not run apt (the packages must be there)
#   CONFORMANCE_ACCEL=tcg|kvm   only TCG / only KVM (default: KVM, then TCG)
#   CONFORMANCE_PROBES=1        also run probes/kt_probe.c on both sides and
#                               print its "# info" lines (never compared)
#   CONFORMANCE_QEMU_TIMEOUT=S  bound on the whole VM run (default 240 s)
#   CONFORMANCE_KEEP=1          keep the work folder (printed at the end)
#   CONFORMANCE_PROGS="kt_a kt_b"  run only these programs
#   CONFORMANCE_SIDE=kernel     only the kernel side: no cargo, no user-space
#                               programs; a check passes when the kernel
#                               prints "ok" (for writing checks before the
#                               library has the calls they use)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
PROGS=(kt_sched kt_stop kt_bind kt_park kt_worker_legacy kt_worker kt_wait kt_tstate
       kt_freeze kt_signal)
PKGS=(linux-image-amd64 linux-headers-amd64 qemu-system-x86 busybox-static
      cpio gzip kmod gcc make libc6-dev)
QEMU_TIMEOUT=${CONFORMANCE_QEMU_TIMEOUT:-240}
KVM_BOOT_DEADLINE=10 # seconds for a KVM guest to reach init before TCG
USER_TIMEOUT=60      # seconds per user-space program
case ${CONFORMANCE_SIDE:-both} in
both) kernel_only=0 ;;
kernel) kernel_only=1 ;;
*)
	echo "CONFORMANCE_SIDE must be 'both' or 'kernel'" >&2
	exit 2
	;;
esac

start=$SECONDS
say() { printf '[%3ds] %s\n' $((SECONDS - start)) "$*"; }
die() {
	say "ERROR: $*"
	exit 2
}

work=$(mktemp -d "${TMPDIR:-/tmp}/kthread-conformance.XXXXXX")
qpid=""
cleanup() {
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
		kill "$qpid" 2>/dev/null || true
		wait "$qpid" 2>/dev/null || true
	fi
	if [ "${CONFORMANCE_KEEP:-0}" = 1 ]; then
		echo "work folder kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

progs=("${PROGS[@]}")
if [ -n "${CONFORMANCE_PROGS:-}" ]; then
	read -r -a progs <<<"$CONFORMANCE_PROGS"
fi
if [ "${CONFORMANCE_PROBES:-0}" = 1 ]; then
	progs+=(kt_probe) # last: in the kernel it leaves a kthread stuck
fi

# ---- 1. packages ----------------------------------------------------------

if [ "${CONFORMANCE_SKIP_APT:-0}" = 1 ]; then
	say "packages: apt skipped (CONFORMANCE_SKIP_APT=1)"
else
	missing=()
	for p in "${PKGS[@]}"; do
		dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' ||
			missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		say "packages: all installed"
	else
		[ "$(id -u)" = 0 ] || die "not root: cannot install ${missing[*]}"
		say "packages: installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		if ! timeout 300 apt-get update -q >"$work/apt.log" 2>&1; then
			tail -20 "$work/apt.log"
			die "apt-get update failed"
		fi
		# INITRD=No: the image's own Debian initramfs is not needed (this
		# script brings its own), and building it costs minutes.
		if ! INITRD=No timeout 600 apt-get install -y -q --no-install-recommends \
			"${missing[@]}" >>"$work/apt.log" 2>&1; then
			tail -30 "$work/apt.log"
			die "apt-get install failed"
		fi
		say "packages: installed"
	fi
fi
for tool in qemu-system-x86_64 make cc cpio gzip; do
	command -v "$tool" >/dev/null || die "$tool not found"
done
[ -x /bin/busybox ] || die "/bin/busybox not found (busybox-static)"
[ $kernel_only = 1 ] || command -v cargo >/dev/null || die "cargo not found"

# ---- 2. the kernel: the installed image with headers (not uname -r) --------

kver=""
kbuild=""
for v in $( (ls -1 /lib/modules 2>/dev/null
	ls -1d /usr/src/linux-headers-* 2>/dev/null | sed 's|.*/linux-headers-||') |
	sort -uV); do
	[ -f "/boot/vmlinuz-$v" ] || continue
	if [ -f "/lib/modules/$v/build/Makefile" ]; then
		kver=$v kbuild=/lib/modules/$v/build
	elif [ -f "/usr/src/linux-headers-$v/Makefile" ]; then
		kver=$v kbuild=/usr/src/linux-headers-$v
	fi
done
[ -n "$kver" ] || die "no /boot/vmlinuz-<ver> with headers for <ver> (linux-image-amd64 + linux-headers-amd64)"
vmlinuz=/boot/vmlinuz-$kver
say "kernel: $kver (host runs $(uname -r))"

mkdir -p "$work/kmod" "$work/user" "$work/initramfs"
cp "$here/Kbuild" "$here/env.h" "$here"/kt_*.c "$work/kmod/"
cp "$here/env.h" "$here"/kt_*.c "$work/user/"
if [ "${CONFORMANCE_PROBES:-0}" = 1 ]; then
	cp "$here/probes/kt_probe.c" "$work/kmod/"
	cp "$here/probes/kt_probe.c" "$work/user/"
	echo 'obj-m += kt_probe.o' >>"$work/kmod/Kbuild"
fi

if ! timeout 600 make -j"$(nproc)" -C "$kbuild" M="$work/kmod" modules >"$work/kmod.log" 2>&1; then
	tail -40 "$work/kmod.log"
	die "module build failed"
fi
if grep -E 'warning:|error:' "$work/kmod.log" >/dev/null; then
	grep -E -A3 'warning:|error:' "$work/kmod.log" | head -40
	say "modules: built with warnings (above)"
else
	say "modules: built"
fi

# ---- 3. the library and the user-space programs ----------------------------

libkthread="(not built: CONFORMANCE_SIDE=kernel)"
if [ $kernel_only = 1 ]; then
	say "programs: skipped (CONFORMANCE_SIDE=kernel)"
elif ! (cd "$repo" && timeout 900 cargo build --release -p kthread-capi \
	--message-format=json-render-diagnostics >"$work/cargo.json" 2>"$work/cargo.log"); then
	tail -40 "$work/cargo.log"
	die "cargo build -p kthread-capi failed"
fi
if [ $kernel_only = 0 ]; then
	libkthread=$(grep -o '"[^"]*/libkthread\.a"' "$work/cargo.json" | tail -1 | tr -d '"')
	[ -f "$libkthread" ] || die "cargo built no libkthread.a"
	for p in "${progs[@]}"; do
		if ! cc -std=gnu11 -O2 -g -Wall -Wextra -Wno-unused-parameter \
			-I"$repo/capi/include" -I"$work/user" "$work/user/$p.c" "$libkthread" \
			-lpthread -ldl -lm -lrt -lutil -lgcc_s -o "$work/user/$p" \
			>>"$work/user/cc.log" 2>&1; then
			cat "$work/user/cc.log"
			die "cc $p.c failed"
		fi
	done
	if [ -s "$work/user/cc.log" ]; then
		cat "$work/user/cc.log"
		say "programs: built with warnings (above)"
	else
		say "programs: built against $libkthread"
	fi
fi

# ---- 4. the initramfs --------------------------------------------------------

ir=$work/initramfs
mkdir -p "$ir/bin" "$ir/dev" "$ir/proc" "$ir/sys" "$ir/ktc"
cp /bin/busybox "$ir/bin/busybox"
for p in "${progs[@]}"; do cp "$work/kmod/$p.ko" "$ir/ktc/"; done
mknod -m 600 "$ir/dev/console" c 5 1 2>/dev/null || true
cat >"$ir/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# The check lines are KERN_INFO: let them reach the console despite "quiet".
echo 7 >/proc/sys/kernel/printk
# kt_freeze: pm_suspend() only freezes and thaws tasks, bounded at 20 s.
echo freezer >/sys/power/pm_test
echo 0 >/sys/module/suspend/parameters/pm_test_delay 2>/dev/null
echo 20000 >/sys/power/pm_freeze_timeout
echo "KTC-BOOT \$(uname -r) cpus=\$(grep -c ^processor /proc/cpuinfo)"
for m in ${progs[*]}; do
	echo "KTC-INSMOD \$m"
	insmod /ktc/\$m.ko
	echo "KTC-INSMOD-RC \$m \$?"
done
echo KTC-ALL-DONE
poweroff -f
EOF
chmod +x "$ir/init"
(cd "$ir" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$work/initrd.gz")

# ---- 5. the VM ---------------------------------------------------------------

serial=$work/serial.log
start_qemu() { # accel args...
	timeout -k 5 "$QEMU_TIMEOUT" qemu-system-x86_64 "$@" \
		-smp 2 -m 512M -nographic -no-reboot -nic none \
		-kernel "$vmlinuz" -initrd "$work/initrd.gz" \
		-append "console=ttyS0 panic=-1 quiet" </dev/null >"$serial" 2>&1 &
	qpid=$!
}
finish_qemu() {
	local rc=0
	wait "$qpid" || rc=$?
	qpid=""
	return $rc
}

accel=""
qemu_rc=0
qemu_t0=$SECONDS
if [ "${CONFORMANCE_ACCEL:-}" != tcg ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	start_qemu -enable-kvm
	booted=0
	for _ in $(seq 1 $((KVM_BOOT_DEADLINE * 5))); do
		if grep -aq KTC-BOOT "$serial"; then
			booted=1
			break
		fi
		kill -0 "$qpid" 2>/dev/null || break
		sleep 0.2
	done
	if [ $booted = 1 ]; then
		accel=KVM
		finish_qemu || qemu_rc=$?
	else
		kill "$qpid" 2>/dev/null || true
		finish_qemu || true
		why=$(grep -a -m1 -iE 'kvm|error' "$serial" | tr -d '\r' || true)
		say "qemu: KVM guest did not reach init within ${KVM_BOOT_DEADLINE} s${why:+ ($why)}: TCG"
	fi
elif [ "${CONFORMANCE_ACCEL:-}" = kvm ]; then
	die "CONFORMANCE_ACCEL=kvm but /dev/kvm is not usable"
fi
if [ -z "$accel" ]; then
	[ "${CONFORMANCE_ACCEL:-}" != kvm ] || die "CONFORMANCE_ACCEL=kvm but the KVM guest did not boot"
	accel=TCG
	qemu_t0=$SECONDS
	start_qemu -accel tcg
	finish_qemu || qemu_rc=$?
fi
say "qemu: $accel run took $((SECONDS - qemu_t0)) s (exit $qemu_rc)"

# ---- 6. the user-space runs --------------------------------------------------

declare -A user_rc
for p in "${progs[@]}"; do
	user_rc[$p]=0
	[ $kernel_only = 0 ] || continue
	rc=0
	(cd "$work/user" && timeout -k 5 "$USER_TIMEOUT" "./$p") \
		>"$work/user/$p.out" 2>"$work/user/$p.err" || rc=$?
	user_rc[$p]=$rc
done
[ $kernel_only = 1 ] || say "programs: run"

# ---- 7. compare ----------------------------------------------------------------

problems=()
hard=0 # crashes, hangs and the like: counted as failed checks too
# The kernel's lines, without timestamps and prefix.
tr -d '\r' <"$serial" | grep -a 'KTC ' | sed 's/^.*KTC //' >"$work/kernel.all" || true
: >"$work/user.all"
if [ $kernel_only = 0 ]; then
	for p in "${progs[@]}"; do cat "$work/user/$p.out" >>"$work/user.all"; done
fi
keep='^(ok|FAIL) |^# [a-z_]+: [0-9]+ passed, [0-9]+ failed$'
grep -E "$keep" "$work/kernel.all" >"$work/kernel.txt" || true
grep -E "$keep" "$work/user.all" >"$work/user.txt" || true

# Crashes and hangs.
if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
	problems+=("the VM hung: killed after ${QEMU_TIMEOUT} s")
	hard=$((hard + 1))
fi
if ! grep -aq KTC-ALL-DONE "$serial"; then
	problems+=("the VM did not finish the module list")
	hard=$((hard + 1))
fi
while read -r m rc; do
	if [ "$rc" != 0 ]; then
		problems+=("insmod $m exited $rc")
		hard=$((hard + 1))
	fi
done < <(tr -d '\r' <"$serial" | grep -a -o 'KTC-INSMOD-RC .*' | cut -d' ' -f2-)
if tr -d '\r' <"$serial" | grep -a -E 'BUG:|Oops|Kernel panic|general protection fault|unable to handle|soft lockup|blocked for more than|hung_task' >"$work/oops.txt"; then
	problems+=("kernel errors: $(head -3 "$work/oops.txt" | tr '\n' ';')")
	hard=$((hard + 1))
fi
# The kernel WARNs in kthread_park() for the two error checks of kt_park
# (-EBUSY, -ENOSYS); any other WARN is a problem.
warns=$(tr -d '\r' <"$serial" | grep -a -c 'WARNING: CPU' || true)
other_warns=$(tr -d '\r' <"$serial" | grep -a 'WARNING: CPU' | grep -v ' kthread_park+' || true)
if [ -n "$other_warns" ]; then
	problems+=("unexpected kernel WARN: $other_warns")
	hard=$((hard + 1))
fi
for p in "${progs[@]}"; do
	name=$(grep -m1 -o '^#define KTC_PROG "[a-z_]*"' "$work/user/$p.c" | cut -d'"' -f2)
	if ! grep -Eq "^# $name: [0-9]+ passed" "$work/kernel.all"; then
		problems+=("kernel: $p did not finish (crash or hang)")
		hard=$((hard + 1))
	fi
	[ $kernel_only = 0 ] || continue
	if ! grep -Eq "^# $name: [0-9]+ passed" "$work/user.all"; then
		problems+=("kthread: $p did not finish (exit ${user_rc[$p]})")
		hard=$((hard + 1))
	fi
	case ${user_rc[$p]} in
	0 | 1) ;;
	124 | 137) problems+=("kthread: $p hung (killed after ${USER_TIMEOUT} s)") ;;
	*) problems+=("kthread: $p crashed (exit ${user_rc[$p]})") ;;
	esac
	if [ -s "$work/user/$p.err" ]; then
		echo "--- stderr of $p (kthread):"
		head -20 "$work/user/$p.err"
	fi
done

sides=(kernel user)
[ $kernel_only = 0 ] || sides=(kernel)
for side in "${sides[@]}"; do
	dups=$(grep -E '^(ok|FAIL) ' "$work/$side.txt" | cut -d' ' -f2 | sort | uniq -d | tr '\n' ' ')
	[ -z "$dups" ] || problems+=("$side: check names printed twice: $dups")
done
# Diagnostics of failed time checks ("# note ...").
grep -h '^# note ' "$work/kernel.all" | sed 's/^/kernel: /' || true
grep -h '^# note ' "$work/user.all" | sed 's/^/kthread: /' || true

echo
printf '%-7s %-7s %s\n' kernel kthread check
printf '%-7s %-7s %s\n' ------ ------- -----
# One row per check, in order, with the status on each side.
awk -v konly=$kernel_only '
	function status(line) { return substr(line, 1, index(line, " ") - 1) }
	function name(line) { return substr(line, index(line, " ") + 1) }
	FNR == NR { if ($1 != "#") { n = name($0); if (!(n in k)) order[++cnt] = n; k[n] = status($0) } next }
	$1 != "#" { n = name($0); if (!(n in k) && !(n in u)) order[++cnt] = n; u[n] = status($0) }
	END {
		for (i = 1; i <= cnt; i++) {
			n = order[i]
			ks = (n in k) ? k[n] : "-"; us = (n in u) ? u[n] : "-"
			mark = (ks == "ok" && (konly || us == ks)) ? "" : "   <<<"
			printf "%-7s %-7s %s%s\n", ks, us, n, mark
		}
	}' "$work/kernel.txt" "$work/user.txt" | tee "$work/table.txt"

echo
echo "summaries (kernel | kthread):"
for p in "${progs[@]}"; do
	name=$(grep -m1 -o '^#define KTC_PROG "[a-z_]*"' "$work/user/$p.c" | cut -d'"' -f2)
	ks=$(grep -m1 -E "^# $name: [0-9]+ passed" "$work/kernel.txt" || echo "# $name: (no summary)")
	us=$(grep -m1 -E "^# $name: [0-9]+ passed" "$work/user.txt" || echo "# $name: (no summary)")
	printf '  %-36s | %s\n' "$ks" "$us"
done

if [ $kernel_only = 0 ] && ! diff -q "$work/kernel.txt" "$work/user.txt" >/dev/null; then
	echo
	echo "differences (kernel | kthread):"
	diff -y -W 200 --suppress-common-lines "$work/kernel.txt" "$work/user.txt" || true
	problems+=("the kernel and kthread printed different lines")
fi

if [ "${CONFORMANCE_PROBES:-0}" = 1 ]; then
	echo
	echo "probes (not compared):"
	echo "  kernel $kver:"
	grep '^# info' "$work/kernel.all" | sed 's/^# info /    /' || true
	echo "  kthread:"
	grep '^# info' "$work/user.all" | sed 's/^# info /    /' || true
fi

total=$(wc -l <"$work/table.txt")
same=$(grep -vc '<<<$' "$work/table.txt" || true)
kfail=$(grep -c '^FAIL' "$work/kernel.txt" || true)
ufail=$(grep -c '^FAIL' "$work/user.txt" || true)
[ "$kfail" = 0 ] || problems+=("$kfail check(s) FAIL in the kernel")
[ "$ufail" = 0 ] || problems+=("$ufail check(s) FAIL on kthread")

if [ ${#problems[@]} -gt 0 ]; then
	echo
	echo "last lines of the VM's console:"
	tr -d '\r' <"$serial" | tail -60 | sed 's/^/  /'
fi

echo
echo "kernel $kver in qemu ($accel, -smp 2), $warns expected WARN(s) from kthread_park; kthread: $libkthread"
for pr in "${problems[@]}"; do echo "PROBLEM: $pr"; done
say "done"
echo "conformance: $same passed, $((total - same + hard)) failed"
[ ${#problems[@]} -eq 0 ] && [ "$same" = "$total" ] && [ "$total" -gt 0 ]
