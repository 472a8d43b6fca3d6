# ofsroot boot script for {{.Board}}.
# Made by `ofsroot bootfiles` from boot/boot.cmd in the ofsroot sources.
#
# The U-Boot environment chooses how the root is mounted:
#   overlayfs    yes: the root is read-only under a RAM overlay;
{{- if .ProtectByDefault}}
#                no: a plain boot; unset: protected, as yes (this script
#                was made with --protect-by-default: a new board, or an
#                environment lost to a power cut while it was saved, for
#                which U-Boot falls back to its built-in one, boots protected)
{{- else}}
#                no, or unset: a plain boot
{{- end}}
#   ofs-size     the RAM layer's size: percent of RAM (20), N%, or bytes
#                with K, M or G (unset: the init's default, 50%)
#   ofs-once     set (to anything): boot once with the overlay off, for
#                maintenance; this script deletes it and saves the
#                environment first, so the boot after is protected again
#   ofs-reset    set (to anything): the next boot empties the persistent
#                layer (ofs-upper=DEVICE in extbootargs) with ofs-reset=1;
#                deleted and saved first, as ofs-once, so once only
#   ofs-root     the root= value, if the default does not fit
#   extbootargs  more kernel command-line words, added as they are
# For example: setenv overlayfs yes; setenv ofs-size 20; saveenv; boot
# and for one maintenance boot: setenv ofs-once 1; saveenv; boot
# (on Linux: ofsctl overlay on, ofsctl overlay size 20, ofsctl overlay once).

echo "ofsroot: boot script for {{.Board}}"

# Where this script was loaded from; U-Boot's distro boot sets these.
if test -z "${devtype}"; then devtype=mmc; fi
if test -z "${devnum}"; then devnum=0; fi
if test -z "${distro_bootpart}"; then distro_bootpart=1; fi
if test -z "${prefix}"; then prefix=/; fi

# The root: ofs-root if set, else {{if .Root}}{{.Root}}{{else}}the partition this script came
# from, by PARTUUID (U-Boot's part command; builds without it, such as
# Debian's nitrogen6q, need ofs-root or a boot.scr made with --root){{end}}.
ofs_root="${ofs-root}"
{{if .Root -}}
if test -z "${ofs_root}"; then ofs_root="{{.Root}}"; fi
{{- else -}}
if test -z "${ofs_root}"; then
	if part uuid ${devtype} ${devnum}:${distro_bootpart} ofs_partuuid; then
		ofs_root="PARTUUID=${ofs_partuuid}"
		setenv ofs_partuuid
	else
		echo "ofsroot: cannot name the root partition; set ofs-root (e.g. setenv ofs-root LABEL=rootfs; saveenv)"
	fi
fi
{{- end}}

# (U-Boot's hush has no working exit inside if: the rest is one block.)
if test -n "${ofs_root}"; then
	ofs_overlay="${overlayfs}"
{{- if .ProtectByDefault}}
	if test -z "${ofs_overlay}"; then
		echo "ofsroot: overlayfs is not set (a new environment, or the built-in one of U-Boot after the saved one was lost): protected, as this script was made to be"
		ofs_overlay=yes
	fi
{{- end}}
	if test -n "${ofs-once}"; then
		# The flag is deleted and saved before the maintenance boot: one
		# that could not be cleared would leave every later boot
		# unprotected, so then this boot is protected as usual. Variables
		# distro boot set for this boot only are not saved.
		setenv ofs-once
		setenv filesize
		setenv bootfstype
		setenv devplist
		if saveenv; then
			echo "ofsroot: ofs-once: a maintenance boot, with the overlay off this time only"
			ofs_overlay=no
		else
			echo "ofsroot: ofs-once: cannot save the environment, so no maintenance boot"
		fi
	fi

	ofs_reset=0
	if test -n "${ofs-reset}"; then
		# As ofs-once: deleted and saved first, so that only this boot
		# empties the layer; if it cannot be saved, no reset (every
		# boot would empty it).
		setenv ofs-reset
		setenv filesize
		setenv bootfstype
		setenv devplist
		if saveenv; then
			echo "ofsroot: ofs-reset: this boot empties the persistent layer"
			ofs_reset=1
		else
			echo "ofsroot: ofs-reset: cannot save the environment, so no reset"
		fi
	fi

	setenv bootargs "console={{.Console}} root=${ofs_root} rootwait{{range .Append}} {{.}}{{end}}"
	if test -n "${ofs_overlay}"; then setenv bootargs "${bootargs} overlayfs=${ofs_overlay}"; fi
	if test -n "${ofs-size}"; then setenv bootargs "${bootargs} ofs-size=${ofs-size}"; fi
	if test -n "${extbootargs}"; then setenv bootargs "${bootargs} ${extbootargs}"; fi
	if test "${ofs_reset}" = 1; then setenv bootargs "${bootargs} ofs-reset=1"; fi

	echo "ofsroot: loading zImage, {{.DTB}} and uInitrd from ${devtype} ${devnum}:${distro_bootpart} ${prefix}"
	if load ${devtype} ${devnum}:${distro_bootpart} {{.KernelAddr}} ${prefix}zImage && load ${devtype} ${devnum}:${distro_bootpart} {{.FDTAddr}} ${prefix}{{.DTB}} && load ${devtype} ${devnum}:${distro_bootpart} {{.RamdiskAddr}} ${prefix}uInitrd; then
		echo "ofsroot: bootargs ${bootargs}"
		bootz {{.KernelAddr}} {{.RamdiskAddr}} {{.FDTAddr}}
	fi
fi
echo "ofsroot: boot failed"
