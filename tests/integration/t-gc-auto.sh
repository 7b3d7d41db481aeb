#!/usr/bin/env bash
# t-gc-auto.sh: the background job that follows a switch (`git dnadata
# spare`, run here in the foreground, which does the job's work
# synchronously) enforces cache_budget and stash_keep without `gc`: it drops
# templates, spares and unedited stashes, never a stash with edits nor the
# working database, and never holds the database lock during a DROP: a
# held lock stops it with nothing dropped, and a kill -9 between "record
# pending" and the DROP leaves a pending copy the next command drops.
. "$(dirname "$0")/../lib.sh"

# The hooks would switch on checkout already; here `restore` does it. DNADATA_SPARES=0 (the suite's
# default) means no job is started by a switch: each test runs the job's work itself.
export DNADATA_SKIP=1

value() { psql_q "$DB" "SELECT string_agg(v, ',' ORDER BY id) FROM t WHERE id <= 3"; }
set_budgets() { printf '[database]\nspares = 0\n'; printf '%s\n' "$@"; } >>.git/dnadata/config.ini


# main holds X, B holds Y, C holds Z. Switches main -> B -> C (C's database edited) -> main leave
# templates, B's unedited stash and C's edited one; main's own stash is renamed back.
setup_switches() {
	repo_with_db auto
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'x' || g FROM generate_series(1, 100) g; ANALYZE"
	expect_ok git dnadata snapshot
	git checkout -q -b B
	psql_q "$DB" "UPDATE t SET v = 'y' WHERE id <= 10"
	expect_ok git dnadata snapshot
	git checkout -q -b C
	psql_q "$DB" "UPDATE t SET v = 'z' WHERE id <= 10"
	expect_ok git dnadata snapshot
	git checkout -q main
	expect_ok git dnadata restore
	git checkout -q B
	expect_ok git dnadata restore
	git checkout -q C
	expect_ok git dnadata restore
	psql_q "$DB" "UPDATE t SET v = 'edited' WHERE id = 1"
	git checkout -q main
	expect_ok git dnadata restore
	assert_eq "x1,x2,x3" "$(value)"
	TEMPLATES=$(databases_like "${DB}__dnadata_tmpl_")
	[ -n "$TEMPLATES" ] || fail "templates expected"
	assert_eq 2 "$(databases_like "${DB}__dnadata_stash_" | wc -l)" "two stashes"
	EDITED=$(grep -l "^branch C$" "$(records_dir)"/stash-* | xargs sed -n 's/^name //p')
	UNEDITED=$(grep -l "^branch B$" "$(records_dir)"/stash-* | xargs sed -n 's/^name //p')
	[ -n "$EDITED" ] && [ -n "$UNEDITED" ] || fail "stashes of B and C expected"
}

test_the_job_brings_copies_within_budget_without_gc() {
	setup_switches
	set_budgets "cache_budget = 0" "stash_keep = 0"
	expect_ok git dnadata spare --count 0
	assert_contains "$ERR" "gc: freed"
	assert_eq "" "$(databases_like "${DB}__dnadata_tmpl_")" "every template dropped"
	assert_eq "$EDITED" "$(databases_like "${DB}__dnadata_stash_")" "the edited stash kept, the unedited one dropped"
	assert_eq "x1,x2,x3" "$(value)" "the working database untouched"
	assert_consistent
	# what is left (index files, manifests) cannot go: the next job does not run gc again, says nothing
	expect_ok git dnadata spare --count 0
	assert_not_contains "$ERR" "gc:"
	assert_eq "$EDITED" "$(databases_like "${DB}__dnadata_stash_")"
	# a new template passes that floor: the next job drops it
	git checkout -q B
	expect_ok git dnadata restore
	[ -n "$(databases_like "${DB}__dnadata_tmpl_")" ] || fail "a template expected"
	expect_ok git dnadata spare --count 0
	assert_contains "$ERR" "gc: freed"
	assert_eq "" "$(databases_like "${DB}__dnadata_tmpl_")"
	assert_consistent
}

test_within_budget_the_job_drops_nothing() {
	setup_switches
	set_budgets "cache_budget = 10G" "stash_keep = 5"
	local before
	before=$(databases_like "${DB}__dnadata_")
	expect_ok git dnadata spare --count 0
	assert_not_contains "$ERR" "gc:"
	assert_eq "$before" "$(databases_like "${DB}__dnadata_")"
	assert_consistent
}

test_stash_keep_keeps_the_newest_unedited_stash() {
	setup_switches
	# a second unedited stash: D holds C's snapshot, cloned from its template (C's stash has edits), and
	# main's clean database is stashed
	pg_wait_no_sessions "$DB" # main's database must be stashed as unedited (the last check's psql may linger)
	git checkout -q -b D C
	expect_ok git dnadata restore
	TEMPLATES=$(databases_like "${DB}__dnadata_tmpl_")
	# B's stash last used long ago: the order is the test's choice, not the clock's (one-second stamps)
	local rec
	rec=$(grep -l "^name $UNEDITED$" "$(records_dir)"/stash-*)
	sed -i 's/^used .*/used 2026-01-01T00:00:00Z/' "$rec"
	set_budgets "cache_budget = 10G" "stash_keep = 1"
	local newer
	newer=$(grep -l "^branch main$" "$(records_dir)"/stash-* | xargs sed -n 's/^name //p')
	[ -n "$newer" ] || fail "main's stash expected"
	assert_eq no "$(grep -l "^name $newer$" "$(records_dir)"/stash-* | xargs sed -n 's/^modified //p')" \
		"main's stash recorded unedited"
	expect_ok git dnadata spare --count 0
	assert_contains "$ERR" "gc: freed"
	assert_eq "$(printf '%s\n' "$EDITED" "$newer" | LC_ALL=C sort)" \
		"$(databases_like "${DB}__dnadata_stash_" | LC_ALL=C sort)" "the older unedited stash dropped ($UNEDITED)"
	assert_eq "$TEMPLATES" "$(databases_like "${DB}__dnadata_tmpl_")" "templates within budget: kept"
	assert_consistent
}

test_a_held_database_lock_stops_the_job_with_nothing_dropped() {
	setup_switches
	set_budgets "cache_budget = 0" "stash_keep = 0"
	local lock before line
	before=$(databases_like "${DB}__dnadata_")
	lock=$(find .git/dnadata/pg -name lock | head -n 1)
	[ -n "$lock" ] || fail "no database lock file"
	coproc HOLDER { flock "$lock" sh -c 'echo held; read x'; }
	read -r line <&"${HOLDER[0]}"
	assert_eq held "$line"
	expect_ok git dnadata spare --count 0
	assert_contains "$ERR" "stopped: a lock was held"
	assert_eq "$before" "$(databases_like "${DB}__dnadata_")" "nothing dropped while the lock is held"
	assert_consistent
	echo done >&"${HOLDER[1]}"
	wait "$HOLDER_PID" || true
	# the next job goes on
	expect_ok git dnadata spare --count 0
	assert_eq "" "$(databases_like "${DB}__dnadata_tmpl_")"
	assert_eq "$EDITED" "$(databases_like "${DB}__dnadata_stash_")"
	assert_consistent
}

test_kill_between_pending_and_drop_leaves_a_copy_the_next_command_drops() {
	setup_switches
	set_budgets "cache_budget = 0" "stash_keep = 5"
	local pid dir pending victim
	DNADATA_FAILPOINT=gc-dropping git-dnadata spare --count 0 >"$T/job.out" 2>"$T/job.err" &
	pid=$!
	for _ in $(seq "$DD_WAIT_POLLS"); do
		[ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" = T ] && break
		kill -0 "$pid" 2>/dev/null || fail "the job ended before gc-dropping: $(cat "$T/job.err")"
		sleep 0.05
	done
	[ "$(cut -d' ' -f3 "/proc/$pid/stat")" = T ] || fail "the job never reached gc-dropping"
	# stopped after releasing the lock: a switch is not held up by it
	dir=$(records_dir)
	expect_ok flock -n "$dir/lock" true
	kill -KILL "$pid"
	wait "$pid" || true
	pending=$(cd "$dir" && ls | grep pending- || true)
	[ -n "$pending" ] || fail "a pending record expected"
	victim=$(sed -n 's/^name //p' "$dir/$pending")
	assert_contains "$(databases_like "${DB}__dnadata_tmpl_")" "$victim" "its database not dropped yet"
	assert_eq "" "$(grep -l "^name $victim$" "$dir"/tmpl-* || true)" "no record names it as a template"
	# the next command drops it
	expect_ok git dnadata restore
	assert_not_contains "$(databases_like "${DB}__dnadata_")" "$victim"
	assert_eq "x1,x2,x3" "$(value)"
	assert_consistent
}

# The real thing: a switch starts the job detached (spares = 0: started only because a budget may be exceeded),
# and the job, at its own pace, drops what the budgets do not allow. Waited for through its log.
test_a_switch_starts_the_job_that_enforces_the_budgets() {
	setup_switches
	set_budgets "cache_budget = 0" "stash_keep = 0"
	: >.git/dnadata/spare.log
	git checkout -q B
	DNADATA_SPARES= expect_ok git dnadata restore
	for _ in $(seq "$DD_WAIT_POLLS"); do
		grep -q "gc: freed" .git/dnadata/spare.log && break
		sleep 0.05
	done
	assert_contains "$(cat .git/dnadata/spare.log)" "gc: freed"
	assert_eq "" "$(databases_like "${DB}__dnadata_tmpl_")" "every template dropped"
	assert_eq "$EDITED" "$(databases_like "${DB}__dnadata_stash_")" "only the edited stash kept"
	assert_eq "y,y,y" "$(value)"
	assert_consistent
}

run_tests
