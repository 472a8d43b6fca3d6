#!/bin/sh
# dist/build.sh: what `make dist` runs. Builds, for amd64, armhf and
# arm64, a Debian package (dpkg-deb from a staged tree) and a tarball of
# the same files, into $OUT (default out/dist):
#   ofsroot_DEBVERSION_ARCH.deb   ofsroot-VERSION-ARCH.tar.gz
# Every program is stamped with VERSION (default: git describe) through
# -ldflags -X (package version). SOURCE_DATE_EPOCH (default: the last
# commit's time) dates every file, so two builds give the same bytes.
set -eu
cd "$(dirname "$0")/.."

GO=${GO:-go}
OUT=${OUT:-out/dist}
ARCHES=${ARCHES:-amd64 armhf arm64}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo 0.0.0)}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
export SOURCE_DATE_EPOCH

# The Debian version: VERSION without a leading v, "-" turned into "+"
# (dpkg reads the last "-" as the revision), "0~git" before a bare
# commit hash, and the revision -1.
debver=${VERSION#v}
case "$debver" in
[0-9]*) ;;
*) debver="0~git$debver" ;;
esac
debver=$(printf '%s' "$debver" | tr -- '-_' '++')-1

goarch() { case "$1" in amd64) echo amd64 ;; armhf) echo arm ;; arm64) echo arm64 ;; *) echo "unknown arch $1" >&2; exit 1 ;; esac; }
# The init's name in usr/lib/ofsroot: initramfs.ShippedInitName.
initname() { case "$1" in amd64) echo init-amd64 ;; armhf) echo init-armv7 ;; arm64) echo init-arm64 ;; esac; }

LDFLAGS="-s -w -buildid= -X github.com/ofsroot/ofsroot/pkg/version.Version=$VERSION"
gobuild() { # ARCH PKG OUT
	CGO_ENABLED=0 GOOS=linux GOARCH=$(goarch "$1") GOARM=7 \
		"$GO" build -trimpath -buildvcs=false -ldflags "$LDFLAGS" -o "$3" "$2"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT" "$work/inits"

echo "dist: version $VERSION (Debian $debver), SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH"
for a in amd64 armhf arm64; do
	gobuild "$a" ./cmd/init "$work/inits/$(initname "$a")"
done

changelog_date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

for arch in $ARCHES; do
	s="$work/ofsroot_${debver}_$arch"
	mkdir -p "$s/DEBIAN" "$s/usr/bin" "$s/usr/lib/ofsroot" "$s/usr/share/ofsroot/boards" \
		"$s/usr/share/doc/ofsroot" "$s/usr/share/lintian/overrides" "$s/usr/share/flash-kernel/ubootenv.d" \
		"$s/lib/systemd/system" "$s/etc/ofsroot" "$s/etc/kernel/postinst.d" "$s/etc/kernel/postrm.d" \
		"$s/etc/grub.d" "$s/etc/default/grub.d"
	gobuild "$arch" ./cmd/ofsroot "$s/usr/bin/ofsroot"
	gobuild "$arch" ./cmd/ofsctl "$s/usr/bin/ofsctl"
	install -m 755 "$work"/inits/init-* "$s/usr/lib/ofsroot/"
	install -m 755 dist/update-initramfs "$s/usr/lib/ofsroot/update-initramfs"
	install -m 644 board/*.json "$s/usr/share/ofsroot/boards/"
	install -m 644 boot/boot.cmd "$s/usr/share/ofsroot/boot.cmd"
	install -m 755 dist/ofsroot-ramguard.init "$s/usr/lib/ofsroot/ofsroot-ramguard.init"
	install -m 644 dist/ofsroot-ramguard.service "$s/lib/systemd/system/"
	install -m 644 dist/ofsroot.conf dist/ramguard.conf "$s/etc/ofsroot/"
	install -m 755 dist/kernel/postinst.d-ofsroot "$s/etc/kernel/postinst.d/ofsroot"
	install -m 755 dist/kernel/postrm.d-ofsroot "$s/etc/kernel/postrm.d/ofsroot"
	install -m 755 dist/grub/06_ofsroot "$s/etc/grub.d/06_ofsroot"
	install -m 644 dist/grub/ofsroot.cfg "$s/etc/default/grub.d/ofsroot.cfg"
	install -m 644 dist/flash-kernel/ofsroot "$s/usr/share/flash-kernel/ubootenv.d/ofsroot"
	install -D -m 644 dist/flash-kernel/ofsroot.db "$s/usr/share/flash-kernel/db/ofsroot.db"
	install -m 644 dist/debian/copyright "$s/usr/share/doc/ofsroot/copyright"
	install -m 644 dist/debian/lintian-overrides "$s/usr/share/lintian/overrides/ofsroot"
	# The changelog's trailer names the Maintainer of control.in.
	maintainer=$(sed -n 's/^Maintainer: //p' dist/debian/control.in)
	printf 'ofsroot (%s) unstable; urgency=medium\n\n  * Built by make dist from commit %s.\n\n -- %s  %s\n' \
		"$debver" "$commit" "$maintainer" "$changelog_date" | gzip -9n >"$s/usr/share/doc/ofsroot/changelog.Debian.gz"
	chmod 644 "$s/usr/share/doc/ofsroot/changelog.Debian.gz"

	size=$(du -sk --exclude=DEBIAN "$s" | cut -f1)
	sed -e "s/@VERSION@/$debver/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" dist/debian/control.in >"$s/DEBIAN/control"
	(cd "$s" && find etc -type f | sort | sed 's,^,/,') >"$s/DEBIAN/conffiles"
	install -m 755 dist/debian/postinst dist/debian/prerm dist/debian/postrm "$s/DEBIAN/"
	(cd "$s" && find . -path ./DEBIAN -prune -o -type f -print | sed 's,^\./,,' | LC_ALL=C sort | xargs md5sum) >"$s/DEBIAN/md5sums"
	chmod 644 "$s/DEBIAN/control" "$s/DEBIAN/conffiles" "$s/DEBIAN/md5sums"
	find "$s" -type d -exec chmod 755 {} +
	find "$s" -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

	deb="$OUT/ofsroot_${debver}_$arch.deb"
	dpkg-deb --root-owner-group -Zxz --build "$s" "$deb" >/dev/null
	tgz="$OUT/ofsroot-$VERSION-$arch.tar.gz"
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
		--transform "s,^\\.,ofsroot-$VERSION," -C "$s" --exclude ./DEBIAN -cf - . | gzip -9n >"$tgz"
	echo "dist: $deb ($(du -h "$deb" | cut -f1)), $tgz"
done
