#!/usr/bin/env bash
# t-hooks.sh: git-dnadata's git hooks with real git and the real server:
# a branch checkout, `git pull` (post-merge) and `git commit --amend` /
# `git rebase` (post-rewrite) switch the working database to the snapshot
# HEAD's ref names (a rebase once, at its end: one that stops keeps the
# branch's database); equal refs, file checkouts and DNADATA_SKIP=1 change
# nothing; every failure (store gone, key missing, server down, another
# session, the lock held, a broken ref file) leaves the checkout successful
# with one warning line and the database untouched. Installing keeps the
# user's hooks (they still run, their status still counts), twice is once,
# uninstalling puts them back; core.hooksPath; symbolic links refused. The
# pre-push hook on a folder store: uploads a --dump-only snapshot, refuses
# when it cannot. Linked worktrees without and with their own database.
. "$(dirname "$0")/../lib.sh"

XDATA="1x,2x"
YDATA="1y,2y,3y"

# two_branches: a repository on a fresh database $DB with a folder store
# $T/store; main's ref names snapshot $X (rows $XDATA), branch b's names $Y
# ($YDATA). Ends on b, the database holding Y.
two_branches() {
	repo_with_db hk --store "file://$T/store"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'x'), (2, 'x')"
	expect_ok git dnadata snapshot
	X=$OUT
	expect_ok git checkout -b b
	psql_q "$DB" "UPDATE t SET v = 'y'; INSERT INTO t VALUES (3, 'y')"
	expect_ok git dnadata snapshot
	Y=$OUT
	assert_ne "$X" "$Y"
}

data() { psql_q "${1:-$DB}" "SELECT string_agg(id || v, ',' ORDER BY id) FROM t"; }
db_oid() { psql_q postgres "SELECT oid FROM pg_database WHERE datname = '${1:-$DB}'"; }
state_files() { find .git/dnadata/pg -type f ! -name lock -print0 | sort -z | xargs -0 -r sha1sum; }
warning_lines() { printf '%s\n' "$ERR" | grep -c '^git-dnadata: ' || true; }

# expect_not_switched CMD...: CMD succeeds, prints exactly one "git-dnadata:" line naming
# `git dnadata restore`, and the database still holds Y, the very same database.
expect_not_switched() {
	local oid
	oid=$(db_oid)
	expect_ok "$@"
	assert_eq 1 "$(warning_lines)" "one warning line"
	assert_eq 1 "$(printf '%s\n' "$ERR" | grep -c .)" "nothing but that line: $ERR"
	assert_contains "$ERR" "run \`git dnadata restore\` to"
	assert_eq "$YDATA" "$(data)" "database untouched"
	assert_eq "$oid" "$(db_oid)" "the same database"
}

test_branch_checkout_switches_the_database_both_ways() {
	two_branches
	expect_ok git checkout main
	assert_eq "$XDATA" "$(data)"
	assert_contains "$ERR" "restored snapshot ${X:0:12}"
	expect_ok git checkout b
	assert_eq "$YDATA" "$(data)"
	expect_ok git dnadata status
	assert_contains "$OUT" "Git hooks:      installed"
	assert_contains "$OUT" "holds snapshot ${Y:0:12}"
}

test_equal_refs_change_nothing_and_connect_to_nothing() {
	two_branches
	git branch c
	local oid state
	oid=$(db_oid)
	state=$(state_files)
	# the no-op path makes no connection at all (to the server, or to anything else)
	# LeakSanitizer cannot run under ptrace (a sanitizer build would abort at exit)
	expect_ok strace -f -qq -e trace=connect -o "$T/trace" git checkout -q c
	assert_eq "" "$ERR" "nothing said"
	assert_eq "" "$(grep -v 'nscd' "$T/trace" | grep 'connect(' || true)" "no connection made"
	assert_eq "$oid" "$(db_oid)"
	assert_eq "$state" "$(state_files)" "no restore recorded"
}

test_file_checkout_does_not_switch() {
	two_branches
	local oid
	oid=$(db_oid)
	expect_ok git checkout main -- .dnadata/refs/clean
	assert_eq "$YDATA" "$(data)"
	assert_eq "$oid" "$(db_oid)"
	assert_eq "" "$ERR"
}

test_pull_switches_through_post_merge() {
	two_branches
	expect_ok git checkout main
	assert_eq "$XDATA" "$(data)"
	expect_ok git pull -q --ff-only . b
	grep -q "$Y" .dnadata/refs/clean || fail "the pull did not bring b's ref"
	assert_eq "$YDATA" "$(data)" "post-merge switched"
}

test_amend_and_rebase_switch_through_post_rewrite() {
	two_branches
	expect_ok git checkout main
	assert_eq "$XDATA" "$(data)"
	# amend main's last commit so that its ref names Y: only post-rewrite sees it
	git show b:.dnadata/refs/clean >.dnadata/refs/clean
	expect_ok git commit -q --amend -a --no-edit
	assert_eq "$YDATA" "$(data)" "post-rewrite (amend) switched"
	git reset -q --hard HEAD@{1}
	expect_ok git dnadata restore
	assert_eq "$XDATA" "$(data)"
	# a branch with a commit of its own, rebased onto b: it ends with b's ref
	git checkout -q -b r
	echo r >r.txt && git add r.txt && git commit -q -m r
	expect_ok git rebase -q b
	assert_eq "$YDATA" "$(data)" "rebase switched"
}

# a rebase checks out `onto` (running post-checkout) before it replays the branch's commits: when
# it stops there, the user works on the branch's commits, so the database must stay the branch's.
# Branch r changes the ref itself (to Z) as b did (to Y): rebasing r onto b stops on that conflict.
test_a_stopped_rebase_keeps_the_branchs_database() {
	two_branches
	expect_ok git checkout main
	git checkout -q -b r
	psql_q "$DB" "UPDATE t SET v = 'z'"
	expect_ok git dnadata snapshot
	local oid backend
	oid=$(db_oid)
	for backend in --apply --merge; do
		run git rebase "$backend" b
		[ "$RC" != 0 ] || fail "the $backend rebase did not stop: $ERR"
		[ -d .git/rebase-merge ] || [ -d .git/rebase-apply ] || fail "no $backend rebase in progress"
		assert_eq "1z,2z" "$(data)" "the stopped $backend rebase keeps r's database"
		assert_eq "$oid" "$(db_oid)" "the same database ($backend)"
		if [ "$backend" = --apply ]; then
			expect_ok git rebase --abort
			assert_eq "1z,2z" "$(data)" "aborted: still r's database"
			continue
		fi
		# keep r's ref (the commit being replayed) and finish: post-rewrite has nothing to switch
		git checkout -q --theirs .dnadata/refs/clean && git add .dnadata/refs/clean
		GIT_EDITOR=true expect_ok git rebase --continue
		assert_eq "1z,2z" "$(data)" "finished: r's database"
		assert_eq "$oid" "$(db_oid)" "the same database, never switched"
	done
}

# a rebase that only fast-forwards checks out `onto` as its result and runs no post-rewrite
test_a_fast_forward_rebase_switches() {
	two_branches
	expect_ok git checkout -b f main
	assert_eq "$XDATA" "$(data)"
	expect_ok git rebase b
	assert_eq "$YDATA" "$(data)" "the merge backend's fast-forward switched"
	expect_ok git reset -q --hard main
	expect_ok git dnadata restore
	assert_eq "$XDATA" "$(data)"
	expect_ok git rebase --apply b
	assert_eq "$YDATA" "$(data)" "the apply backend's fast-forward switched"
}

test_a_failing_post_restore_command_is_one_line_after_the_switch() {
	two_branches
	printf '[hooks]\npost_restore = exit 7\n' >>.git/dnadata/config.ini
	expect_ok git checkout -q main
	assert_eq "$XDATA" "$(data)" "switched"
	assert_eq 1 "$(warning_lines)"
	assert_contains "$ERR" "git-dnadata: switched the database to snapshot ${X:0:12}, but post_restore command 1 (\`exit 7\`) failed with exit status 7"
}

test_dnadata_skip_skips_the_hook() {
	two_branches
	DNADATA_SKIP=1 expect_ok git checkout -q main
	assert_eq "$YDATA" "$(data)"
	assert_eq "" "$ERR"
}

test_store_gone_warns_and_leaves_the_database() {
	two_branches
	mv "$T/store" "$T/store.away"
	rm -rf .git/dnadata/cache/packs .git/dnadata/cache/index .git/dnadata/cache/snapshots .git/dnadata/cache/data
	expect_not_switched git checkout -q main
	assert_contains "$ERR" "to switch the database to snapshot ${X:0:12}"
}

test_missing_key_warns_and_leaves_the_database() {
	two_branches
	mv .git/dnadata/key "$T/key.away"
	expect_not_switched git checkout -q main
}

test_server_down_warns_and_leaves_the_database() {
	two_branches
	local dead
	dead=$(pg_free_port)
	local oid
	oid=$(db_oid)
	PGHOST=127.0.0.1 PGPORT=$dead expect_ok git checkout main
	assert_eq 1 "$(warning_lines)"
	assert_contains "$ERR" "run \`git dnadata restore\` to"
	assert_eq "$YDATA" "$(data)"
	assert_eq "$oid" "$(db_oid)"
}

test_another_session_warns_and_leaves_the_database() {
	two_branches
	# an idle session, as an application leaves one
	coproc SESSION { "$DD_PG_BINDIR/psql" -XAtq -d "dbname=$DB application_name=app-session" 2>&1; }
	local line
	echo "SELECT 'connected';" >&"${SESSION[1]}"
	read -r line <&"${SESSION[0]}"
	assert_eq connected "$line"
	expect_not_switched git checkout -q main
	assert_contains "$ERR" "app-session"
	eval "exec ${SESSION[1]}>&-"
	wait "$SESSION_PID" || true
}

test_held_lock_is_not_waited_for() {
	two_branches
	local lock
	lock=$(find .git/dnadata/pg -name lock | head -n 1)
	[ -n "$lock" ] || fail "no database lock file"
	coproc HOLDER { flock "$lock" sh -c 'echo held; read x'; }
	local line
	read -r line <&"${HOLDER[0]}"
	assert_eq held "$line"
	expect_not_switched git checkout -q main
	assert_contains "$ERR" "another git dnadata command is working on database $DB"
	echo done >&"${HOLDER[1]}"
	wait "$HOLDER_PID" || true
}

test_broken_ref_file_warns_and_checkout_succeeds() {
	two_branches
	git checkout -q -b broken main
	printf 'not a ref\n' >.dnadata/refs/clean
	git commit -q -a -m broken
	git checkout -q b
	expect_not_switched git checkout -q broken
}

test_user_hooks_are_kept_run_first_and_put_back() {
	new_repo
	printf '#!/bin/sh\necho "user hook $*" >>"$(git rev-parse --git-dir)/../user-ran"\nexit 3\n' >.git/hooks/post-checkout
	chmod 755 .git/hooks/post-checkout
	cp -p .git/hooks/post-checkout "$T/original"
	need_pg
	DB=$(pg_newdb hku)
	expect_ok git dnadata init --database "dbname=$DB"
	assert_contains "$ERR" "your hook is kept as .git/hooks/post-checkout.before-dnadata"
	cmp .git/hooks/post-checkout.before-dnadata "$T/original" || fail "the user's hook changed"
	assert_contains "$(sed -n 2p .git/hooks/post-checkout)" "# installed by git-dnadata"
	# it runs, with git's arguments, and its exit status is still the checkout's
	run git checkout -b other
	assert_eq 1 "$RC" "the user's hook's failure counts (git reports it as 1)"
	assert_contains "$(cat user-ran)" "user hook "
	# install twice = once
	local before
	before=$(cd .git/hooks && sha1sum post-checkout* post-merge post-rewrite pre-push)
	expect_ok git dnadata install-hooks
	assert_contains "$ERR" "already installed"
	assert_eq "$before" "$(cd .git/hooks && sha1sum post-checkout* post-merge post-rewrite pre-push)"
	# an outdated hook of ours is rewritten in place
	echo "# old" >>.git/hooks/post-merge
	expect_ok git dnadata status
	assert_contains "$OUT" "post-merge outdated"
	expect_ok git dnadata install-hooks
	assert_contains "$ERR" ".git/hooks/post-merge: updated"
	expect_ok git dnadata uninstall-hooks
	cmp .git/hooks/post-checkout "$T/original" || fail "the user's hook was not put back as it was"
	assert_no_file .git/hooks/post-checkout.before-dnadata
	assert_no_file .git/hooks/pre-push
	expect_ok git dnadata status
	assert_contains "$OUT" "post-checkout not ours, post-merge missing"
}

# a hook of the user's that already runs `git dnadata hook` is not chained (our part would run twice)
test_a_user_hook_calling_ours_is_left_alone() {
	new_repo
	printf '#!/bin/sh\necho "user pre-push" >>"$(git rev-parse --git-dir)/../user-ran"\ngit dnadata hook pre-push "$@"\n' \
		>.git/hooks/pre-push
	chmod 755 .git/hooks/pre-push
	cp -p .git/hooks/pre-push "$T/original"
	need_pg
	DB=$(pg_newdb hkc)
	expect_ok git dnadata init --database "dbname=$DB"
	assert_contains "$ERR" ".git/hooks/pre-push: left as it is: it runs \`git dnadata hook pre-push\` itself"
	cmp .git/hooks/pre-push "$T/original" || fail "the user's hook changed"
	assert_no_file .git/hooks/pre-push.before-dnadata
	assert_file .git/hooks/post-checkout
	expect_ok git dnadata status
	assert_contains "$OUT" "Git hooks:      installed (some through your own hook files)"
	# git-dnadata's pre-push part runs once: count its runs through a wrapper first on PATH
	local real
	real=$(command -v git-dnadata)
	mkdir "$T/wrap"
	printf '#!/bin/sh\necho "$*" >>"%s/calls"\nexec "%s" "$@"\n' "$T" "$real" >"$T/wrap/git-dnadata"
	chmod 755 "$T/wrap/git-dnadata"
	git init -q --bare "$T/remote.git"
	git remote add origin "$T/remote.git"
	PATH="$T/wrap:$PATH" expect_ok git push -q origin main
	assert_eq "user pre-push" "$(cat user-ran)" "the user's pre-push ran once"
	assert_eq "hook pre-push origin $T/remote.git" "$(cat "$T/calls")" "our pre-push part ran once"
	# one kept behind ours by an older version is put back
	mv .git/hooks/pre-push .git/hooks/pre-push.before-dnadata
	expect_ok git dnadata install-hooks
	cmp .git/hooks/pre-push.before-dnadata "$T/original" || fail "setup: the user's hook is not kept"
	assert_contains "$(sed -n 2p .git/hooks/pre-push)" "# installed by git-dnadata"
	expect_ok git dnadata install-hooks
	assert_contains "$ERR" ".git/hooks/pre-push: your hook is back"
	cmp .git/hooks/pre-push "$T/original" || fail "the user's hook was not put back"
	assert_no_file .git/hooks/pre-push.before-dnadata
	expect_ok git dnadata uninstall-hooks
	cmp .git/hooks/pre-push "$T/original" || fail "uninstall touched the user's hook"
}

test_a_failing_user_pre_push_still_refuses_the_push() {
	repo_with_db hkp
	git init -q --bare "$T/remote.git"
	git remote add origin "$T/remote.git"
	printf '#!/bin/sh\ncat >"$(git rev-parse --git-dir)/../pre-push-input"\nexit 1\n' >.git/hooks/pre-push.before-dnadata
	chmod 755 .git/hooks/pre-push.before-dnadata
	run git push -q origin main
	[ "$RC" != 0 ] || fail "the push went through"
	assert_contains "$(cat pre-push-input)" "refs/heads/main $(git rev-parse HEAD) refs/heads/main"
	run git ls-remote "$T/remote.git"
	assert_eq "" "$OUT" "nothing pushed"
	rm .git/hooks/pre-push.before-dnadata
	expect_ok git push -q origin main
}

test_core_hooks_path_is_honoured() {
	new_repo
	git config core.hooksPath .husky
	need_pg
	DB=$(pg_newdb hkh)
	expect_ok git dnadata init --database "dbname=$DB"
	assert_file .husky/post-checkout
	assert_no_file .git/hooks/post-checkout
	expect_ok git dnadata status
	assert_contains "$OUT" "Git hooks:      installed"
	# a hook manager's own file that calls ours counts as installed
	expect_ok git dnadata uninstall-hooks
	printf '#!/bin/sh\ngit dnadata hook post-checkout "$@"\n' >.husky/post-checkout
	chmod +x .husky/post-checkout # git skips a hook without it (and status says so)
	expect_ok git dnadata status
	assert_contains "$OUT" "post-merge missing"
	assert_not_contains "$OUT" "post-checkout"
}

test_a_symlinked_hook_is_refused_and_nothing_changes() {
	new_repo
	echo '#!/bin/sh' >"$T/managed"
	ln -s "$T/managed" .git/hooks/post-merge
	expect_fail 1 git dnadata install-hooks
	assert_contains "$ERR" "the post-merge hook .git/hooks/post-merge is a symbolic link"
	assert_no_file .git/hooks/post-checkout
	assert_no_file .git/hooks/pre-push
	[ -L .git/hooks/post-merge ] || fail "the link was replaced"
}

test_hooks_come_from_the_binary_not_from_home() {
	new_repo
	local home=$T/emptyhome
	mkdir "$home"
	HOME=$home expect_ok git dnadata install-hooks
	assert_eq "" "$(ls -A "$home")" "nothing written in HOME"
	for h in post-checkout post-merge post-rewrite pre-push; do
		cmp ".git/hooks/$h" "$DD_SRCDIR/hooks/$h" || fail "$h differs from hooks/$h"
		[ -x ".git/hooks/$h" ] || fail "$h is not executable"
	done
}

test_init_in_a_fresh_clone_installs_the_hooks() {
	two_branches
	git clone -q "$T/repo" "$T/clone"
	cd "$T/clone"
	assert_no_file .git/hooks/post-checkout
	# the clone joins the shared folder store with a copy of the key
	mkdir -m 700 .git/dnadata
	install -m 600 "$T/repo/.git/dnadata/key" .git/dnadata/key
	expect_ok git dnadata init
	assert_contains "$ERR" "initialised this clone's local state"
	assert_file .git/hooks/post-checkout
	assert_file .git/hooks/pre-push
	expect_ok git dnadata status
	assert_contains "$OUT" "Git hooks:      installed"
}

test_without_git_dnadata_on_path_post_hooks_pass_and_pre_push_refuses() {
	two_branches
	git init -q --bare "$T/remote.git"
	git remote add origin "$T/remote.git"
	local oid
	oid=$(db_oid)
	PATH=/usr/bin:/bin expect_ok git checkout -q main
	assert_eq "git-dnadata: not found on PATH, so the database was not switched (DNADATA_SKIP=1 hides this)" "$ERR"
	assert_eq "$oid" "$(db_oid)"
	PATH=/usr/bin:/bin run git push -q origin main
	assert_eq 1 "$RC"
	assert_contains "$ERR" "push anyway with \`git push --no-verify\`"
	assert_eq "" "$(git --git-dir="$T/remote.git" rev-parse -q --verify main || true)"
}

test_pre_push_uploads_a_dump_only_snapshot() {
	repo_with_db hkq --store "file://$T/store"
	git init -q --bare "$T/remote.git"
	git remote add origin "$T/remote.git"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'x')"
	expect_ok git dnadata snapshot --dump-only
	local id=$OUT
	assert_no_file "$T/store/snapshots/$id"
	expect_ok git push -q origin main
	assert_file "$T/store/snapshots/$id"
	assert_eq "$(git rev-parse HEAD)" "$(git --git-dir="$T/remote.git" rev-parse main)"
	expect_ok git dnadata verify
}

test_pre_push_refuses_when_a_snapshot_cannot_be_uploaded() {
	repo_with_db hkr --store "file://$T/store"
	git init -q --bare "$T/remote.git"
	git remote add origin "$T/remote.git"
	expect_ok git push -q origin main
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'x')"
	expect_ok git dnadata snapshot --dump-only
	local id=$OUT
	mv "$T/store" "$T/store.away"
	run git push -q origin main
	assert_eq 1 "$RC"
	assert_contains "$ERR" "push refused: snapshot ${id:0:12}"
	assert_contains "$ERR" "git push --no-verify"
	assert_eq 1 "$(printf '%s\n' "$ERR" | grep -vc '^error: failed to push some refs')" "one line of ours: $ERR"
	assert_ne "$(git rev-parse HEAD)" "$(git --git-dir="$T/remote.git" rev-parse main)"
	expect_ok git push -q --no-verify origin main
	# a new branch: its commits are those no remote-tracking branch has (main's
	# snapshot, pushed with --no-verify, is not looked at again)
	mv "$T/store.away" "$T/store"
	git checkout -q -b feature
	psql_q "$DB" "INSERT INTO t VALUES (2, 'y')"
	expect_ok git dnadata snapshot --dump-only
	local id2=$OUT
	expect_ok git push -q origin feature
	assert_file "$T/store/snapshots/$id2"
	assert_no_file "$T/store/snapshots/$id"
}

test_pre_push_of_tags_peels_them_and_skips_tags_of_trees() {
	repo_with_db hkt --store "file://$T/store"
	git init -q --bare "$T/remote.git"
	git remote add origin "$T/remote.git"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'x')"
	expect_ok git dnadata snapshot --dump-only
	local id=$OUT
	git tag -a v1 -m v1
	git tag tree-tag "HEAD^{tree}"
	expect_ok git push -q origin tree-tag
	assert_no_file "$T/store/snapshots/$id"
	expect_ok git push -q origin v1
	assert_file "$T/store/snapshots/$id"
}

test_linked_worktree_switches_nothing_until_given_its_own_database() {
	two_branches
	expect_ok git checkout main
	assert_eq "$XDATA" "$(data)"
	local oid
	oid=$(db_oid)
	git branch c b
	run git worktree add -q "$T/wt" c
	[ "$RC" = 0 ] || fail "worktree add failed: $ERR"
	assert_contains "$ERR" "this linked worktree manages no database of its own"
	assert_eq "$XDATA" "$(data)" "the main worktree's database is untouched"
	assert_eq "$oid" "$(db_oid)"
	cd "$T/wt"
	expect_ok git checkout -q -b d main
	assert_eq "" "$ERR" "said once"
	expect_fail 1 git dnadata restore
	assert_contains "$ERR" "--worktree-database"
	DB2=$(pg_newdb hkw)
	psql_q postgres "DROP DATABASE $DB2"
	git checkout -q c
	expect_ok git dnadata use clean --worktree-database "$DB2"
	assert_eq "$YDATA" "$(data "$DB2")"
	expect_ok git checkout d
	assert_eq "$XDATA" "$(data "$DB2")" "the worktree's own database switched"
	expect_ok git checkout c
	assert_eq "$YDATA" "$(data "$DB2")"
	cd "$T/repo"
	assert_eq "$XDATA" "$(data)" "the main worktree's database is untouched"
	assert_eq "$oid" "$(db_oid)"
	expect_ok git checkout b
	assert_eq "$YDATA" "$(data)"
	assert_eq "$YDATA" "$(data "$DB2")"
}

# worktree_database in the shared .git/dnadata/config.ini would give every linked worktree the same database
test_worktree_database_in_the_shared_config_is_refused() {
	two_branches
	run git worktree add -q "$T/wt" -b c main
	[ "$RC" = 0 ] || fail "worktree add failed: $ERR"
	local cfg=.git/dnadata/config.ini
	if grep -q '^\[database\]' "$cfg"; then
		sed -i '/^\[database\]/a worktree_database = shared_wt' "$cfg"
	else
		printf '[database]\nworktree_database = shared_wt\n' >>"$cfg"
	fi
	cd "$T/wt"
	expect_fail 1 git dnadata restore
	assert_contains "$ERR" "'worktree_database' is set in a linked worktree's own config file"
	assert_contains "$ERR" "not in $T/repo/.git/dnadata/config.ini"
	assert_eq "" "$(psql_q postgres "SELECT datname FROM pg_database WHERE datname = 'shared_wt'")" "no database made"
}

run_tests
