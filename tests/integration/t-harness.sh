#!/usr/bin/env bash
# t-harness.sh: the test runner itself cannot be fooled: a unit-test program
# that was not built, a script that stops before its plan is done, or a
# program that prints no plan all count as failures; tests run side by side
# (a "# serial" script alone), reported in order; and the release tarball
# holds everything needed to build and test from it.
. "$(dirname "$0")/../lib.sh"

# A fake source tree with one unit test source and one integration script.
fake_tree() {
	mkdir -p "$T/src/tests/unit" "$T/src/tests/integration" "$T/build/tests/unit"
	cp "$DD_SRCDIR/tests/run" "$DD_SRCDIR/tests/lib.sh" "$DD_SRCDIR/tests/pg.sh" "$DD_SRCDIR/tests/s3.sh" "$T/src/tests/"
	echo 'int main(void) { return 0; }' >"$T/src/tests/unit/test-gone.c"
	cp "$DD_BUILDDIR/git-dnadata" "$T/build/"
}

test_a_unit_test_program_that_was_not_built_fails_the_run() {
	fake_tree
	run env -u DD_TEST_FILTER "$T/src/tests/run" --builddir "$T/build" --srcdir "$T/src"
	assert_ne 0 "$RC" "exit status"
	assert_contains "$OUT" "not ok - tests/unit/test-gone was not built"
	assert_contains "$OUT" "0 passed, 1 failed"
}

test_a_program_reporting_fewer_results_than_its_plan_fails() {
	fake_tree
	rm "$T/src/tests/unit/test-gone.c"
	printf '#!/bin/sh\necho 1..3\necho "ok 1 - a"\necho "ok 2 - b"\n' >"$T/build/tests/unit/test-short"
	chmod +x "$T/build/tests/unit/test-short"
	run env -u DD_TEST_FILTER "$T/src/tests/run" --builddir "$T/build" --srcdir "$T/src" "$T/build/tests/unit/test-short"
	assert_ne 0 "$RC" "exit status"
	assert_contains "$OUT" "planned 3 tests but reported 2"
	assert_contains "$OUT" "2 passed, 1 failed"
}

test_a_program_without_a_plan_fails() {
	fake_tree
	printf '#!/bin/sh\necho "ok 1 - a"\n' >"$T/build/tests/unit/test-noplan"
	chmod +x "$T/build/tests/unit/test-noplan"
	run env -u DD_TEST_FILTER "$T/src/tests/run" --builddir "$T/build" --srcdir "$T/src" "$T/build/tests/unit/test-noplan"
	assert_ne 0 "$RC" "exit status"
	assert_contains "$OUT" "printed no TAP plan"
}

test_an_integration_script_that_dies_midway_fails() {
	fake_tree
	# (written with printf: a line starting with test_ here would be one of ours)
	printf '%s\n' '. "$(dirname "$0")/../lib.sh"' 'test_one() { true; }' \
		'test_two() { kill -9 $$; }' 'test_three() { true; }' run_tests >"$T/src/tests/integration/t-dies.sh"
	run env -u DD_TEST_FILTER "$T/src/tests/run" --builddir "$T/build" --srcdir "$T/src" "$T/src/tests/integration/t-dies.sh"
	assert_ne 0 "$RC" "exit status"
	assert_contains "$OUT" "planned 3 tests but reported"
}

# DD_TEST_JOBS=2: two tests run at once (test-a and test-b each wait for the
# other to start: run one at a time, both fail), a "# serial" script runs
# alone (no other test between its start and its end), and results are
# printed in the order of the list, whatever the order they ended in.
test_tests_run_side_by_side_and_a_serial_script_alone() {
	fake_tree
	rm "$T/src/tests/unit/test-gone.c"
	local log=$T/order.log u
	: >"$log"
	for u in a b; do
		local other=b
		[ $u = a ] || other=a
		printf '%s\n' '#!/bin/sh' "echo 'start $u' >>'$log'" \
			"i=0; until grep -q 'start $other' '$log'; do i=\$((i + 1)); [ \$i -lt 400 ] || { echo 1..1; echo 'not ok 1 - $u ran alone'; exit 1; }; sleep 0.05; done" \
			"echo 'end $u' >>'$log'" 'echo 1..1' "echo 'ok 1 - $u'" >"$T/build/tests/unit/test-$u"
	done
	printf '%s\n' '#!/bin/sh' "echo 'start c' >>'$log'" "grep -q 'end s' '$log' || { echo 1..1; echo 'not ok 1 - c before s ended'; exit 1; }" \
		"echo 'end c' >>'$log'" 'echo 1..1' "echo 'ok 1 - c'" >"$T/build/tests/unit/test-c"
	chmod +x "$T/build/tests/unit/test-a" "$T/build/tests/unit/test-b" "$T/build/tests/unit/test-c"
	printf '%s\n' '# serial' "echo 'start s' >>'$log'" \
		"[ \"\$(grep -c '^start' '$log')\" = \"\$(( \$(grep -c '^end' '$log') + 1 ))\" ] || { echo 1..1; echo 'not ok 1 - s beside another test'; exit 1; }" \
		'sleep 0.5' "echo 'end s' >>'$log'" 'echo 1..1' "echo 'ok 1 - s'" >"$T/src/tests/integration/t-s.sh"
	run env -u DD_TEST_FILTER DD_TEST_JOBS=2 "$T/src/tests/run" --builddir "$T/build" --srcdir "$T/src" \
		"$T/build/tests/unit/test-a" "$T/build/tests/unit/test-b" "$T/src/tests/integration/t-s.sh" "$T/build/tests/unit/test-c"
	assert_eq 0 "$RC" "exit status: $OUT"
	assert_contains "$OUT" "4 passed, 0 failed"
	assert_eq "tests/unit/test-a tests/unit/test-b tests/integration/t-s.sh tests/unit/test-c" \
		"$(sed -nE 's/^# (tests\/[^:]+)$/\1/p' <<<"$OUT" | tr '\n' ' ' | sed 's/ $//')" "the order results are printed in"
	assert_eq "start s end s start c end c" "$(grep -E ' (s|c)$' "$log" | tr '\n' ' ' | sed 's/ $//')"
}

# The tarball (make distdir) configures, builds and passes unit and
# integration tests from the unpacked tree, and holds every tracked file.
test_the_release_tarball_builds_and_tests_from_the_unpacked_tree() {
	[ -f "$DD_BUILDDIR/Makefile" ] || fail "no Makefile in $DD_BUILDDIR"
	make -s -C "$DD_BUILDDIR" distdir distdir="$T/pkg" >"$T/dist.log" 2>&1 || fail "make distdir: $(tail -5 "$T/dist.log")"
	if git -C "$DD_SRCDIR" rev-parse --git-dir >/dev/null 2>&1; then
		local f missing=
		while IFS= read -r f; do
			case $f in .gitignore|*/.gitignore|m4/.keep) continue ;; esac
			[ -e "$T/pkg/$f" ] || missing="$missing $f"
		done < <(git -C "$DD_SRCDIR" ls-files)
		[ -z "$missing" ] || fail "tracked files missing from the tarball:$missing"
	fi
	find "$T/pkg" -name '*.o' | grep -q . && fail "the tarball carries object files"
	cd "$T/pkg"
	# -O0: this proves the tarball builds and tests, not the optimiser (half the compile time of -O2)
	./configure -q CFLAGS='-O0 -g0' >"$T/configure.log" 2>&1 || fail "configure: $(tail -5 "$T/configure.log")"
	make -s -j2 >"$T/make.log" 2>&1 || fail "make: $(tail -5 "$T/make.log")"
	make -s -j2 build-tests >>"$T/make.log" 2>&1 || fail "make build-tests: $(tail -5 "$T/make.log")"
	run tests/run --builddir . --srcdir . tests/unit/test-util tests/unit/test-ref tests/integration/t-profiles.sh
	[ "$RC" = 0 ] || fail "tests from the tarball failed:"$'\n'"$OUT"
	assert_contains "$OUT" " passed, 0 failed"
}

run_tests
