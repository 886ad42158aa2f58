#!/bin/sh
# scripts/just_booted.sh CMD [ARG...] - runs CMD as if the machine had booted
# a second ago: in a new time namespace (unshare -T, see time_namespaces(7))
# whose CLOCK_MONOTONIC and CLOCK_BOOTTIME start at ~1 s. A fresh CI machine
# looks like this, and a test that moves a timestamp into the past
# ("now - 3 minutes") sees a negative time there. CI runs `make test` through
# it (TEST_WRAP). Needs CAP_SYS_ADMIN; without it CMD runs on the real clock
# (with a note on stderr).
up=$(cut -d. -f1 /proc/uptime)
shift_s=$((up - 1))
if [ "$shift_s" -gt 0 ] &&
	unshare -T --fork --monotonic=-"$shift_s" --boottime=-"$shift_s" true 2>/dev/null; then
	exec unshare -T --fork --monotonic=-"$shift_s" --boottime=-"$shift_s" "$@"
fi
echo "just_booted: no time namespace here (needs CAP_SYS_ADMIN): the real clock" >&2
exec "$@"
