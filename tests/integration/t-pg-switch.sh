#!/usr/bin/env bash
# t-pg-switch.sh: switching between branches with `git checkout` + `git
# dnadata restore` (the git hooks do the same from post-checkout): a
# branch's stash is renamed back with its local edits (no restore, no
# clone: same database OID), a snapshot with a template and no spare is
# cloned, a ready spare is renamed in (its OID becomes the working
# database's), a stash with local edits is never dropped, --force still
# rebuilds, other sessions are refused by name or ended on request, and
# the detached spare job prepares spares.
. "$(dirname "$0")/../lib.sh"

# The hooks (issue 16) would switch on checkout already; here `restore` does it.
export DNADATA_SKIP=1

# Branch main's ref names X, branch B's names Y; the database holds X (restored), spares off.
setup_branches() {
	repo_with_db sw
	printf '[database]\nspares = 0\n' >>.git/dnadata/config.ini
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'x' || g FROM generate_series(1, 100) g; CREATE SEQUENCE s"
	# analysed now, or autovacuum's ANALYZE of these 100 new rows (its pg_statistic writes count as changes,
	# change.c) could land later and make the database stashed for B look edited (seen under load)
	psql_q "$DB" "ANALYZE"
	expect_ok git dnadata snapshot
	X=$OUT
	git checkout -q -b B
	psql_q "$DB" "UPDATE t SET v = 'y' WHERE id <= 10"
	expect_ok git dnadata snapshot
	Y=$OUT
	git checkout -q main
	expect_ok git dnadata restore
	assert_contains "$ERR" "restored snapshot ${X:0:12} into database $DB"
	assert_eq "x1,x2,x3" "$(value)"
}

value() { psql_q "$DB" "SELECT string_agg(v, ',' ORDER BY id) FROM t WHERE id <= 3"; }
oid_of() { psql_q postgres "SELECT oid FROM pg_database WHERE datname = '$1'"; }


test_a_branch_gets_its_stash_back_with_its_edits_by_a_rename() {
	setup_branches
	git checkout -q B
	expect_ok git dnadata restore
	assert_eq "y,y,y" "$(value)"
	psql_q "$DB" "UPDATE t SET v = 'edited' WHERE id = 1"
	local edited templates
	edited=$(oid_of "$DB")
	templates=$(databases_like "${DB}__dnadata_tmpl_")
	git checkout -q main
	expect_ok git dnadata restore
	assert_contains "$ERR" "restored snapshot ${X:0:12} into database $DB (the previous one is kept as ${DB}__dnadata_stash_"
	assert_eq "x1,x2,x3" "$(value)"
	local stash
	stash=$(grep -l "^branch B$" "$(records_dir)"/stash-* | xargs sed -n 's/^name //p')
	assert_eq "$edited" "$(oid_of "$stash")" "the edited database is B's stash"
	assert_eq "yes" "$(grep -h -A20 "^name $stash$" "$(records_dir)"/stash-* | sed -n 's/^modified //p')"
	git checkout -q B
	expect_ok git dnadata restore
	assert_contains "$ERR" "renamed its stash back"
	assert_eq "edited,y,y" "$(value)" "the local edit came back"
	assert_eq "$edited" "$(oid_of "$DB")" "the same database, renamed: no restore, no clone"
	assert_eq "$templates" "$(databases_like "${DB}__dnadata_tmpl_")" "no template was built"
	assert_eq "" "$(databases_like "${DB}__dnadata_new_")"
	assert_consistent
	# the working record says what it holds: a restore now has nothing to do (edits are kept by a switch)
	expect_ok git dnadata use clean
	assert_contains "$ERR" "kept it with its local changes"
}

# A restore on a branch whose database was edited sets the edited one aside because the user asked
# for a clean copy: coming back to that branch later must not bring back the database the user threw
# away (it stays listed). Here main's clean database leaves with `git checkout -b C` (same ref: no
# switch) and becomes C's snapshot, so main has no other stash: it gets a clean clone of X.
test_a_stash_replaced_by_a_restore_on_its_branch_is_not_renamed_back() {
	setup_branches
	psql_q "$DB" "UPDATE t SET v = 'broken' WHERE id <= 3"
	local broken
	broken=$(oid_of "$DB")
	expect_ok git dnadata restore
	assert_eq "x1,x2,x3" "$(value)" "restore threw the edit away"
	git checkout -q -b C
	psql_q "$DB" "UPDATE t SET v = 'c' WHERE id = 2"
	expect_ok git dnadata snapshot
	git checkout -q main
	expect_ok git dnadata restore
	assert_eq "x1,x2,x3" "$(value)" "main gets X, not the database its restore replaced"
	assert_ne "$broken" "$(oid_of "$DB")"
	local stash
	stash=$(grep -l "^replaced yes$" "$(records_dir)"/stash-* | xargs sed -n 's/^name //p')
	assert_eq "$broken" "$(oid_of "$stash")" "the replaced database is still kept"
	expect_ok git dnadata stash list
	assert_contains "$OUT" "$stash"
	assert_consistent
}

# The same round trip driven by the git hooks alone (post-checkout calls the switch).
test_git_checkout_alone_brings_each_branch_its_data_and_keeps_edits() {
	setup_branches
	unset DNADATA_SKIP
	expect_ok git checkout -q B
	assert_eq "y,y,y" "$(value)"
	psql_q "$DB" "UPDATE t SET v = 'edited' WHERE id = 1"
	local edited
	edited=$(oid_of "$DB")
	expect_ok git checkout -q main
	assert_eq "x1,x2,x3" "$(value)"
	expect_ok git checkout -q B
	assert_contains "$ERR" "renamed its stash back"
	assert_eq "edited,y,y" "$(value)" "the edit came back"
	assert_eq "$edited" "$(oid_of "$DB")" "by a rename"
	assert_consistent
}

test_equal_refs_change_nothing() {
	setup_branches
	local before
	before=$(oid_of "$DB")
	git checkout -q -b same
	expect_ok git dnadata restore
	assert_contains "$ERR" "already holds snapshot ${X:0:12}"
	assert_eq "$before" "$(oid_of "$DB")"
}

test_a_snapshot_with_a_template_and_no_spare_is_cloned() {
	setup_branches
	psql_q "$DB" "UPDATE t SET v = 'mine' WHERE id = 1" # main's stash will hold edits: not reusable
	git checkout -q B
	expect_ok git dnadata restore
	git checkout -q -b C main # C's ref names X too, and C has no stash
	expect_ok git dnadata restore
	assert_contains "$ERR" "cloned its template"
	assert_eq "x1,x2,x3" "$(value)"
	assert_consistent
	# main's edited stash is still there
	local stash
	stash=$(grep -l "^branch main$" "$(records_dir)"/stash-* | xargs sed -n 's/^name //p')
	assert_eq "mine" "$(psql_q "$stash" "SELECT v FROM t WHERE id = 1")"
}

# The working database's change check runs while the template is cloned; an edit made after it
# (here while the switch is stopped right after the check) must not be recorded as "unedited".
test_an_edit_made_after_the_change_check_is_not_recorded_as_unedited() {
	setup_branches
	psql_q "$DB" "UPDATE t SET v = 'mine' WHERE id = 1" # main's stash will hold edits: not reusable
	git checkout -q B
	expect_ok git dnadata restore # the database holds Y, unedited
	git checkout -q -b C main     # C's ref names X: a clone of its template
	start_stopped_at checked git-dnadata restore
	psql_q "$DB" "UPDATE t SET v = 'late' WHERE id = 2" # after the check, before the rename
	finish_stopped
	assert_contains "$(cat "$T/stopped.err")" "cloned its template"
	assert_eq "x1,x2,x3" "$(value)"
	local rec
	rec=$(grep -l "^branch B$" "$(records_dir)"/stash-*)
	assert_eq "late" "$(psql_q "$(sed -n 's/^name //p' "$rec")" "SELECT v FROM t WHERE id = 2")"
	assert_ne "no" "$(sed -n 's/^modified //p' "$rec")" "the late edit makes B's stash count as edited"
	assert_consistent
}

# A sequence moved after the check, by a session that connected after it, moves no tuple counter:
# the seal's session count catches it (autovacuum's own transactions do not count: t-pg-switch-autovacuum).
test_a_sequence_moved_after_the_change_check_is_not_recorded_as_unedited() {
	setup_branches
	psql_q "$DB" "UPDATE t SET v = 'mine' WHERE id = 1" # main's stash will hold edits: not reusable
	git checkout -q B
	expect_ok git dnadata restore # the database holds Y, unedited
	git checkout -q -b C main     # C's ref names X: a clone of its template
	start_stopped_at checked git-dnadata -v restore
	psql_q "$DB" "SELECT setval('s', 42)" >/dev/null
	finish_stopped
	# the check itself found it unedited: the seal is what tells
	assert_contains "$(cat "$T/stopped.err")" "may have been used since its change check"
	assert_eq "x1,x2,x3" "$(value)"
	local rec
	rec=$(grep -l "^branch B$" "$(records_dir)"/stash-*)
	assert_eq 42 "$(psql_q "$(sed -n 's/^name //p' "$rec")" "SELECT last_value FROM s")"
	assert_ne "no" "$(sed -n 's/^modified //p' "$rec")" "the moved sequence makes B's stash count as edited"
	assert_consistent
}

# A function of the snapshot that turns track_counts off writes uncounted for whoever calls it: the database
# restored with it gets no fingerprint, so such an edit is never recorded as "unedited" (found by review).
test_an_edit_by_a_function_that_turns_track_counts_off_is_not_recorded_as_unedited() {
	repo_with_db sw
	printf '[database]\nspares = 0\n' >>.git/dnadata/config.ini
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'x' || g FROM generate_series(1, 100) g;
		CREATE FUNCTION quiet() RETURNS void LANGUAGE sql SET track_counts = off
		AS \$\$UPDATE t SET v = 'quiet' WHERE id = 1\$\$; ANALYZE"
	expect_ok git dnadata snapshot
	git checkout -q -b B
	psql_q "$DB" "UPDATE t SET v = 'y' WHERE id <= 10"
	expect_ok git dnadata snapshot
	git checkout -q main
	expect_ok git dnadata restore # the database holds X, unedited
	psql_q "$DB" "SELECT quiet()" >/dev/null
	assert_eq "0" "$(psql_q "$DB" "SELECT n_tup_upd FROM pg_stat_all_tables WHERE relid = 't'::regclass")" \
		"the function's write was not counted"
	git checkout -q B
	expect_ok git dnadata restore
	assert_eq "y,y,y" "$(value)"
	local rec
	rec=$(grep -l "^branch main$" "$(records_dir)"/stash-*)
	assert_eq "quiet" "$(psql_q "$(sed -n 's/^name //p' "$rec")" "SELECT v FROM t WHERE id = 1")"
	assert_ne "no" "$(sed -n 's/^modified //p' "$rec")" "the uncounted edit makes main's stash not unedited"
	git checkout -q main
	expect_ok git dnadata restore
	assert_eq "quiet,x2,x3" "$(value)" "the uncounted edit came back"
	assert_consistent
}

# A record write killed midway leaves "<record>.tmp-XXXXXX": once it is old, the next command that reads the
# records removes it; a young one may be a write under way and stays.
test_a_record_write_cut_short_long_ago_is_cleaned_up() {
	setup_branches
	git checkout -q B
	expect_ok git dnadata restore # main's database becomes a stash: a stash record exists
	local dir
	dir=$(records_dir)
	ls "$dir"/stash-* >/dev/null || fail "a stash record expected"
	printf 'name x\n' >"$dir/stash-0123abcd.tmp-AbCdEf"
	printf 'name y\n' >"$dir/stash-0123abcd.tmp-GhIjKl"
	touch -d '2 hours ago' "$dir/stash-0123abcd.tmp-AbCdEf"
	expect_ok git dnadata status
	assert_no_file "$dir/stash-0123abcd.tmp-AbCdEf"
	assert_file "$dir/stash-0123abcd.tmp-GhIjKl"
	assert_consistent
}

test_a_ready_spare_is_renamed_in() {
	setup_branches
	git checkout -q B
	expect_ok git dnadata restore
	# the job, in the foreground: main (checked out last) names X, which has a template
	expect_ok git dnadata spare --count 2
	local spare
	spare=$(databases_like "${DB}__dnadata_spare_")
	assert_eq "${DB}__dnadata_spare_${X:0:12}" "$spare"
	assert_eq "f" "$(psql_q postgres "SELECT datallowconn FROM pg_database WHERE datname = '$spare'")" \
		"nobody can connect to a spare (so it stays as the snapshot was)"
	assert_consistent
	local oid
	oid=$(oid_of "$spare")
	git checkout -q -b C main
	expect_ok git dnadata restore
	assert_contains "$ERR" "renamed a spare in"
	assert_eq "$oid" "$(oid_of "$DB")" "the spare is the working database now"
	assert_eq "x1,x2,x3" "$(value)"
	assert_eq "" "$(databases_like "${DB}__dnadata_spare_")"
	assert_consistent
	# it tells later edits, like any restored database
	expect_ok git dnadata restore
	assert_contains "$ERR" "unchanged since restore"
	psql_q "$DB" "UPDATE t SET v = 'c' WHERE id = 1"
	expect_ok git dnadata status --json
	assert_contains "$OUT" '"changes":"changed"'
}

test_the_spare_job_drops_spares_no_longer_wanted_but_never_a_stash_with_edits() {
	setup_branches
	git checkout -q B
	expect_ok git dnadata restore
	psql_q "$DB" "UPDATE t SET v = 'edited' WHERE id = 1"
	git checkout -q main
	expect_ok git dnadata restore
	expect_ok git dnadata spare --count 2
	assert_eq "" "$(databases_like "${DB}__dnadata_spare_")" "Y has no template: no spare of it"
	git checkout -q B
	expect_ok git dnadata restore --force # Y gets a template; B's edited stash stays aside
	assert_contains "$ERR" "restored it"
	expect_ok git dnadata spare --count 2
	assert_eq "${DB}__dnadata_spare_${X:0:12}" "$(databases_like "${DB}__dnadata_spare_")"
	expect_ok git dnadata spare --count 0
	assert_contains "$ERR" "dropped spare ${DB}__dnadata_spare_${X:0:12}"
	assert_eq "" "$(databases_like "${DB}__dnadata_spare_")"
	local stash
	stash=$(grep -l "^modified yes$" "$(records_dir)"/stash-* | xargs sed -n 's/^name //p')
	[ -n "$stash" ] || fail "no stash recorded as modified"
	assert_eq "edited" "$(psql_q "$stash" "SELECT v FROM t WHERE id = 1")" "the stash with edits is kept"
	assert_consistent
}

test_restore_force_rebuilds_from_the_store_and_replaces_the_template() {
	setup_branches
	local tmpl
	tmpl=$(databases_like "${DB}__dnadata_tmpl_")
	assert_eq "${DB}__dnadata_tmpl_${X:0:12}" "$tmpl"
	expect_ok git dnadata restore --force
	assert_contains "$ERR" "restored it"
	assert_eq "${DB}__dnadata_tmpl_${X:0:12}_1" "$(databases_like "${DB}__dnadata_tmpl_")" "one template, rebuilt"
	# the database replaced was restored for main, though the newest checkout came from B: it is main's stash
	assert_eq "main" "$(grep -h "^branch " $(grep -l "^snapshot $X$" "$(records_dir)"/stash-*) | sed 's/^branch //' | sort -u)"
	assert_eq "x1,x2,x3" "$(value)"
	assert_consistent
}

test_an_edited_database_of_the_same_snapshot_is_rebuilt_from_the_template_not_a_stash() {
	setup_branches
	psql_q "$DB" "UPDATE t SET v = 'first' WHERE id = 1"
	git checkout -q B
	expect_ok git dnadata restore
	git checkout -q main
	expect_ok git dnadata restore
	assert_eq "first,x2,x3" "$(value)" "main's stash came back"
	expect_ok git dnadata restore
	assert_contains "$ERR" "changed since snapshot ${X:0:12}"
	assert_contains "$ERR" "cloned its template"
	assert_eq "x1,x2,x3" "$(value)"
}

test_other_sessions_are_named_or_ended_on_request() {
	setup_branches
	git checkout -q B
	coproc SESSION { "$DD_PG_BINDIR/psql" -XAtq -d "dbname=$DB application_name=reporting" 2>&1; }
	echo "SELECT pg_backend_pid();" >&"${SESSION[1]}"
	local pid
	read -r pid <&"${SESSION[0]}"
	expect_fail 1 git dnadata restore
	assert_contains "$ERR" "database $DB is in use by 1 other session: reporting (local socket, user postgres, pid $pid)"
	assert_contains "$ERR" "--terminate"
	assert_eq "x1,x2,x3" "$(value)"
	expect_ok git dnadata restore --terminate
	assert_contains "$ERR" "renamed its stash back"
	assert_eq "y,y,y" "$(value)"
	eval "exec ${SESSION[1]}>&-"
	wait "$SESSION_PID" || true
	assert_consistent
}

test_a_switch_starts_the_spare_job_in_the_background() {
	setup_branches
	unset DNADATA_SPARES # (tests/lib.sh turns the job off)
	sed -i 's/^spares = 0$/spares = 2/' .git/dnadata/config.ini
	git checkout -q B
	expect_ok git dnadata restore
	# the job runs detached; wait (a condition, polled) for its spare of X
	local dir
	dir=$(records_dir)
	for _ in $(seq "$DD_WAIT_POLLS"); do
		grep -qs "^kind spare$" "$dir"/spare-* && [ ! -e "$dir/job-spares" ] && break
		sleep 0.05
	done
	assert_eq "${DB}__dnadata_spare_${X:0:12}" "$(databases_like "${DB}__dnadata_spare_")"
	assert_contains "$(cat .git/dnadata/spare.log)" "cloning ${DB}__dnadata_tmpl_${X:0:12} into spare"
	assert_consistent
}

test_the_spare_job_runs_detached_at_the_lowest_priority() {
	setup_branches
	unset DNADATA_SPARES # (tests/lib.sh turns the job off)
	sed -i 's/^spares = 0$/spares = 2/' .git/dnadata/config.ini
	git checkout -q B
	# the job inherits the failpoint and stops itself before its clone; the restore does not pass there
	DNADATA_FAILPOINT=spare-pending expect_ok git dnadata restore
	local dir job="" state=""
	dir=$(records_dir)
	for _ in $(seq "$DD_WAIT_POLLS"); do
		job=$(cut -d' ' -f1 "$dir/job-spares" 2>/dev/null || true)
		[ -n "$job" ] && state=$(cut -d' ' -f3 "/proc/$job/stat" 2>/dev/null || true)
		[ "$state" = T ] && break
		sleep 0.05
	done
	[ "$state" = T ] || fail "the spare job never reached its clone"
	# read everything, then kill it before asserting: a failed assertion must not leave a stopped job behind
	local stat ionice_out cmdline ppid parent
	stat=$(cat "/proc/$job/stat")
	ionice_out=$(ionice -p "$job")
	cmdline=$(tr '\0' ' ' <"/proc/$job/cmdline")
	ppid=$(echo "$stat" | cut -d' ' -f4)
	parent=$(cat "/proc/$ppid/comm" 2>/dev/null || true)
	kill -KILL "$job"
	assert_eq "19" "$(echo "$stat" | cut -d' ' -f19)" "nice 19"
	assert_eq "$job" "$(echo "$stat" | cut -d' ' -f6)" "its own session (setsid)"
	assert_contains "$ionice_out" "idle"
	# nobody's child: reparented to init, or to a child subreaper (systemd user session, tini in containers),
	# never a git-dnadata (the restore, which returned while the job still runs, or an intermediate fork)
	assert_ne "git-dnadata" "$parent" "the job's parent (pid $ppid)"
	assert_contains "$cmdline" "spare --left ${X}"
	expect_ok git dnadata use clean # reaps what it left
	assert_consistent
}

run_tests
