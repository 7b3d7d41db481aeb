#!/usr/bin/env bash
# fuzz/build.sh: build the libFuzzer harnesses (fuzz/fuzz-*.c) with clang,
# ASan and UBSan, into OUTDIR (default fuzz/bin).
#
#   fuzz/build.sh [OUTDIR]          build all harnesses
#   fuzz/run.sh [SECONDS] [OUTDIR]  build, then run each for SECONDS (default 60)
#
# Each harness defines LLVMFuzzerTestOneInput() and is linked against every
# source file of the program except src/main.c, all compiled with
# -fsanitize=fuzzer-no-link,address,undefined. Needs Debian's clang and
# libclang-rt-14-dev (or the matching version).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/fuzz/bin}
mkdir -p "$out/obj"
CC=${FUZZ_CC:-clang}
command -v "$CC" >/dev/null || { echo "error: $CC not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }

pkgs="libgit2 libpq libcurl libsodium libcrypto inih libzstd expat"
cflags="-std=c11 -g -O1 -pthread -D_GNU_SOURCE -I$top/src -I$out -fsanitize=fuzzer-no-link,address,undefined $(pkg-config --cflags $pkgs)"
libs="$(pkg-config --libs $pkgs) -lm"

# config.h normally comes from configure; the harnesses need only these.
cat >"$out/config.h" <<H
#define DD_VERSION "fuzz"
#define DD_INIH_VERSION "fuzz"
H

# An object is rebuilt when its source is newer, and all of them when any
# header changed since the last build (a struct's layout may have moved;
# linking stale objects gives false reports).
if [ ! -f "$out/obj/.built" ] || [ -n "$(find "$top/src" -name '*.h' -newer "$out/obj/.built" | head -n 1)" ]; then
	rm -f "$out"/obj/*.o
fi
# The hooks' scripts as strings (dd_hook_scripts[]), which make generates
# into src/git/ of its build: generated here too, so a checkout that was
# never built gives harnesses that link.
(cd "$top" && sh scripts/embed-hooks.sh "$out/hooks-scripts.c.new" hooks/post-checkout hooks/post-merge \
	hooks/post-rewrite hooks/pre-push)
if cmp -s "$out/hooks-scripts.c.new" "$out/hooks-scripts.c"; then
	rm -f "$out/hooks-scripts.c.new"
else
	mv "$out/hooks-scripts.c.new" "$out/hooks-scripts.c"
fi
objs=()
while IFS= read -r src; do
	obj="$out/obj/$(echo "${src#"$top"/src/}" | tr / _).o"
	if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ]; then
		$CC $cflags -c "$src" -o "$obj"
	fi
	objs+=("$obj")
done < <(find "$top/src" -name '*.c' ! -path "$top/src/main.c" ! -path "$top/src/git/hooks-scripts.c" | sort;
	echo "$out/hooks-scripts.c")
touch "$out/obj/.built"

# A harness is linked again when it or any object is newer than it.
for h in "$top"/fuzz/fuzz-*.c; do
	[ -f "$h" ] || continue
	name=$(basename "$h" .c)
	if [ -x "$out/$name" ] && [ ! "$h" -nt "$out/$name" ] &&
		[ -z "$(find "$out/obj" -name '*.o' -newer "$out/$name" | head -n 1)" ]; then
		continue
	fi
	$CC $cflags -fsanitize=fuzzer "$h" "${objs[@]}" $libs -o "$out/$name"
	echo "built $out/$name"
done
