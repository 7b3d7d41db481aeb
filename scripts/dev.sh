#!/usr/bin/env bash
# scripts/dev.sh: one command from a fresh Debian 12 machine to a result.
#
#   scripts/dev.sh demo          install what is missing, build, run the demo
#   scripts/dev.sh test [TEST..] install what is missing, build, run the tests
#                                twice: plain, then under ASan + UBSan
#   scripts/dev.sh build         install what is missing and build
#
# The test verb's two passes: the plain build and suite, then the same tests
# (by default all but t-fuzz.sh, whose harnesses are built with both
# sanitizers in either pass) in build-san/, a copy of the sources with its
# own build; the last line, "N passed, N failed", counts both.
# Options (before the verb): --plain runs the first pass alone (the quick
# one); --sanitizers builds with ASan + UBSan and, for test, runs that pass
# alone, here. Installs Debian packages with apt-get (as root, or through
# sudo) only when they are missing. With CI=true the build uses -Werror.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

sanitizers=no plain=no
while [ $# -gt 0 ]; do
	case $1 in
	--sanitizers) sanitizers=yes; shift ;;
	--plain) plain=yes; shift ;;
	--with-sanitizers) shift ;; # the default since the sanitizer pass joined CI
	*) break ;;
	esac
done
verb=${1:-}
[ $# -gt 0 ] && shift
if [ "$plain" = yes ] && [ "$sanitizers" = yes ]; then
	echo "error: --plain and --sanitizers each choose one pass: give one of them" >&2
	exit 2
fi
both=no
[ "$verb" = test ] && [ "$plain" = no ] && [ "$sanitizers" = no ] && both=yes
case $verb in
demo|test|build) ;;
*) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac

# Why each package: see README.md, "Dependencies".
packages=(gcc make autoconf automake pkg-config git ca-certificates
	libgit2-dev libpq-dev libcurl4-openssl-dev libsodium-dev libssl-dev libinih-dev libzstd-dev libexpat1-dev
	postgresql postgresql-client util-linux)
[ "$verb" = test ] && packages+=(libcmocka-dev clang libclang-rt-14-dev strace)
# gc --store on a machine whose clock is fast (t-store-locks.sh): libfaketime moves this process's clock only.
[ "$verb" = test ] && packages+=(faketime)
# The man page's tests render it (groff's warnings) and open it as man and git help do.
[ "$verb" = test ] && packages+=(man-db groff-base)
# The S3 tests' server (Ceph's RADOS Gateway, tests/s3.sh) and client (awscli).
[ "$verb" = test ] && packages+=(radosgw ceph-mon ceph-osd uuid-runtime awscli python3 curl)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "== installing: ${missing[*]}"
	sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "== building"
opts="--enable-sanitizers=$sanitizers"
[ "${CI:-}" = true ] && opts="$opts --enable-werror"
want=$opts
if [ ! -x configure ] || [ configure.ac -nt configure ]; then
	autoreconf -fi >/dev/null
fi
# Configure again whenever what configure would find has changed: the options,
# or any package it looks for (the test verb installs cmocka after a demo
# configured without it; the unit tests must not silently stay unbuilt).
found=(libgit2-dev libpq-dev libcurl4-openssl-dev libsodium-dev libssl-dev libinih-dev libzstd-dev libexpat1-dev libcmocka-dev)
want="$want $(dpkg-query -W -f='${Package}=${Version};' "${found[@]}" 2>/dev/null | md5sum | cut -c1-16)"
if [ ! -f config.status ] || [ "$(cat .dev-configure 2>/dev/null)" != "$want" ]; then
	[ -f Makefile ] && make -s distclean >/dev/null 2>&1 || true
	./configure -q $opts
	echo "$want" >.dev-configure
fi
jobs=$(nproc 2>/dev/null || echo 2)
make -s -j"$jobs"

case $verb in
build) ;;
demo) exec "$top/scripts/demo.sh" ;;
test)
	make -s -j"$jobs" build-tests
	if [ "$sanitizers" = yes ]; then
		export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
		export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
	fi
	[ "$both" = yes ] || exec "$top/tests/run" --builddir "$top" --srcdir "$top" "$@"
	;;
esac

# The test verb's two passes, each ending with its "N passed, N failed".
san=$top/build-san
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
status=0
echo "== pass 1 of 2: the suite"
"$top/tests/run" --builddir "$top" --srcdir "$top" "$@" | tee "$logs/plain" || status=1
# The sanitizer build's sources: what git tracks or would (a tarball: every
# file but build products, which that build's distclean removes); copied
# with their times, so an unchanged file is not rebuilt.
echo "== pass 2 of 2: the suite under ASan + UBSan (build-san/)"
mkdir -p "$san"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$top" && git ls-files -z -co --exclude-standard | xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
		tar --null -T - -cf -) | tar -C "$san" -xf -
else
	tar -C "$top" --exclude=./build-san -cf - . | tar -C "$san" -xf -
fi
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
	for c in "$san"/tests/unit/test-*.c; do tests+=("${c%.c}"); done
	for t in "$san"/tests/integration/t-*.sh; do
		[ "$(basename "$t")" = t-fuzz.sh ] || tests+=("$t")
	done
fi
"$san/scripts/dev.sh" --sanitizers test "${tests[@]}" | tee "$logs/san" || status=1
count() { tail -n 1 "$1" | sed -nE "s/^([0-9]+) passed, ([0-9]+) failed$/\\$2/p"; }
p1=$(count "$logs/plain" 1) f1=$(count "$logs/plain" 2) p2=$(count "$logs/san" 1) f2=$(count "$logs/san" 2)
if [ -z "$p1" ] || [ -z "$p2" ]; then
	f1=$((${f1:-0} + 1)) # a pass that ended without its count failed
	status=1
fi
[ $((${f1:-0} + ${f2:-0})) = 0 ] || status=1
# the last line, bare as CI reads it: both passes' tests
echo "# the two passes together:"
echo "$((${p1:-0} + ${p2:-0})) passed, $((${f1:-0} + ${f2:-0})) failed"
exit $status
