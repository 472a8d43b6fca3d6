#!/usr/bin/env bash
# Prepare a Debian 12 host for building and boot-testing ofsroot: the armhf
# foreign architecture (for the 32-bit ARM kernels), the QEMU and image
# tools the boot lab uses, and the Go modules. Idempotent and quick when
# everything is already there. Runs apt as root (through sudo if needed).
set -euo pipefail

cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
else
	SUDO=(sudo)
fi

PACKAGES=(
	qemu-system-x86 qemu-system-arm qemu-utils u-boot-tools cpio dosfstools
	mtools fdisk e2fsprogs kmod libubootenv-tool squashfs-tools zstd xz-utils
	debootstrap apparmor lintian grub-common
)

need_update=no

if ! dpkg --print-foreign-architectures | grep -qx armhf; then
	echo "setup-host: adding the armhf architecture"
	"${SUDO[@]}" dpkg --add-architecture armhf
	need_update=yes
fi

# Without armhf package lists, apt-cache cannot name the armmp kernel.
if ! compgen -G '/var/lib/apt/lists/*binary-armhf_Packages*' >/dev/null; then
	need_update=yes
fi

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ "${#missing[@]}" -gt 0 ]; then
	need_update=yes
fi

# apt_update tolerates a mirror caught mid-sync ("File has unexpected size"
# for one index): try three times, then go on with what was fetched.
apt_update() {
	local try
	for try in 1 2 3; do
		if "${SUDO[@]}" apt-get update -q; then
			return 0
		fi
		echo "setup-host: apt-get update failed (try $try of 3)" >&2
		sleep $((try * 2))
	done
	echo "setup-host: going on with the package lists that did arrive" >&2
}

if [ "$need_update" = yes ]; then
	apt_update
fi

if [ "${#missing[@]}" -gt 0 ]; then
	echo "setup-host: installing ${missing[*]}"
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if command -v go >/dev/null; then
	go mod download
else
	echo "setup-host: go is not on PATH; install Go (see go.mod for the version)" >&2
	exit 1
fi

echo "setup-host: ready"
