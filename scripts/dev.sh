#!/usr/bin/env bash
# scripts/dev.sh: one command from a fresh Debian 12 machine to a result.
#
#   scripts/dev.sh demo          install what is missing, build, run the demo
#   scripts/dev.sh test [TEST..] install what is missing, build, run the tests
#   scripts/dev.sh build         install what is missing and build
#
# Options (before the verb): --sanitizers builds with ASan + UBSan.
# Installs Debian packages with apt-get (as root, or through sudo) only when
# they are missing. With CI=true the build uses -Werror.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

sanitizers=no
while [ $# -gt 0 ]; do
	case $1 in
	--sanitizers) sanitizers=yes; shift ;;
	*) break ;;
	esac
done
verb=${1:-}
[ $# -gt 0 ] && shift
case $verb in
demo|test|build) ;;
*) sed -n '2,10p' "$0" >&2; exit 2 ;;
esac

# Why each package: see README.md, "Dependencies".
packages=(gcc make autoconf automake pkg-config git ca-certificates
	libgit2-dev libpq-dev libcurl4-openssl-dev libsodium-dev libssl-dev libinih-dev libzstd-dev libexpat1-dev
	postgresql postgresql-client util-linux)
[ "$verb" = test ] && packages+=(libcmocka-dev clang libclang-rt-14-dev strace)
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
	exec "$top/tests/run" --builddir "$top" --srcdir "$top" "$@"
	;;
esac
