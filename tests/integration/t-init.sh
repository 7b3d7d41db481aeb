#!/usr/bin/env bash
# t-init.sh: `git dnadata init` in real repositories: its commit, idempotence,
# unborn HEAD, subdirectories, linked worktrees, --no-commit, and the user's
# own staged and unstaged work left alone.
. "$(dirname "$0")/../lib.sh"

# Everything a failed or no-op command must not change: HEAD, the index, the work tree, local state.
repo_state() {
	git rev-parse -q --verify HEAD || echo unborn
	git ls-files -s --stage | sha1sum
	find . -path ./.git -prune -o -type f -print0 | sort -z | xargs -0 -r sha1sum
	[ -d .git/dnadata ] && find .git/dnadata -print0 | sort -z | xargs -0 -r ls -ld --time-style=+%s
	true
}

commit_one() { echo "$1" >"$1" && git add "$1" && git commit -q -m "$1"; }

test_init_creates_files_and_commits_only_them() {
	new_repo
	commit_one README
	echo staged >staged.txt && git add staged.txt
	echo changed >>README
	expect_ok git dnadata init
	assert_contains "$ERR" 'committed'
	assert_eq "dnadata: init" "$(git log -1 --format=%s)"
	assert_eq ".dnadata/profiles.ini
.dnadata/refs/.gitkeep" "$(git show --name-only --format= HEAD)"
	assert_file .dnadata/profiles.ini
	assert_file .dnadata/refs/.gitkeep
	assert_eq 700 "$(stat -c %a .git/dnadata)"
	assert_eq 600 "$(stat -c %a .git/dnadata/config.ini)"
	# the user's staged and unstaged changes are still exactly there
	assert_eq " M README
A  staged.txt" "$(git status --porcelain)"
	assert_eq staged "$(git show :staged.txt)"
	assert_eq README "$(git show :README)"
	# the default profile is 'clean' and is active
	assert_contains "$(cat .dnadata/profiles.ini)" '[profile "clean"]'
	assert_contains "$(cat .dnadata/profiles.ini)" 'default_profile = clean'
	expect_ok git dnadata status --json
	assert_contains "$OUT" '"active_profile":"clean"'
}

test_init_options_are_written() {
	new_repo
	expect_ok git dnadata init --store "file://$T/store" --database "dbname=app host=/tmp" --profile demo
	local ini
	ini=$(git show HEAD:.dnadata/profiles.ini)
	assert_contains "$ini" "url = file://$T/store"
	assert_contains "$ini" 'url = dbname=app host=/tmp'
	assert_contains "$ini" '[profile "demo"]'
	assert_contains "$ini" 'default_profile = demo'
	expect_ok git dnadata status --json
	assert_contains "$OUT" "\"store\":{\"url\":\"file://$T/store\",\"source\":\".dnadata/profiles.ini\"}"
}

test_init_twice_says_so_and_changes_nothing() {
	new_repo
	commit_one a
	expect_ok git dnadata init
	local before
	before=$(repo_state)
	sleep 1
	expect_ok git dnadata init
	assert_contains "$ERR" 'already initialised'
	assert_eq "$before" "$(repo_state)"
	assert_eq 2 "$(git rev-list --count HEAD)"
}

test_init_in_a_repository_without_commits() {
	new_repo
	expect_ok git dnadata init
	assert_eq 1 "$(git rev-list --count HEAD)"
	assert_eq "dnadata: init" "$(git log -1 --format=%s)"
	assert_eq main "$(git rev-parse --abbrev-ref HEAD)"
	assert_eq "" "$(git status --porcelain)"
}

test_init_from_a_subdirectory() {
	new_repo
	commit_one a
	mkdir -p src/deep
	cd src/deep
	expect_ok git dnadata init
	cd ../..
	assert_file .dnadata/profiles.ini
	assert_no_file src/deep/.dnadata
	assert_eq "" "$(git status --porcelain)"
	cd src/deep
	expect_ok git dnadata status
	assert_contains "$OUT" 'clean'
}

test_init_in_a_linked_worktree_keeps_state_in_the_common_dir() {
	new_repo
	commit_one a
	git worktree add -q ../wt -b feature
	cd ../wt
	expect_ok git dnadata init
	assert_file .dnadata/profiles.ini
	assert_file "$T/repo/.git/dnadata/config.ini"
	assert_no_file "$T/repo/.git/worktrees/wt/dnadata"
	assert_eq "dnadata: init" "$(git log -1 --format=%s feature)"
	assert_eq "a" "$(git log -1 --format=%s main)"
	assert_eq "" "$(git status --porcelain)"
	# the main worktree is untouched
	assert_no_file "$T/repo/.dnadata"
	# `use` in the worktree is seen from the main worktree too (shared local state);
	# a linked worktree manages no database until given one (t-hooks.sh), so `use`
	# refuses there unless DNADATA_DATABASE names one
	expect_ok git dnadata new-profile other
	expect_fail 1 git dnadata use other
	assert_contains "$ERR" "--worktree-database"
	DNADATA_DATABASE="dbname=wt_db" expect_ok git dnadata use other
	cd "$T/repo"
	git merge -q feature
	expect_ok git dnadata status --json
	assert_contains "$OUT" '"active_profile":"other"'
}

test_init_honours_git_dir_and_git_work_tree() {
	git init -q --bare "$T/dots.git"
	mkdir "$T/home-tree" && cd "$T/home-tree"
	GIT_DIR="$T/dots.git" GIT_WORK_TREE=. expect_ok git dnadata init
	assert_file .dnadata/profiles.ini
	assert_file "$T/dots.git/dnadata/config.ini"
	assert_eq "dnadata: init" "$(git --git-dir="$T/dots.git" log -1 --format=%s)"
	cd .dnadata
	GIT_DIR="$T/dots.git" GIT_WORK_TREE=.. expect_ok git dnadata status
	assert_contains "$OUT" 'clean'
}

test_init_no_commit_leaves_files_uncommitted() {
	new_repo
	commit_one a
	expect_ok git dnadata init --no-commit
	assert_eq a "$(git log -1 --format=%s)"
	assert_eq "?? .dnadata/" "$(git status --porcelain)"
	assert_file .git/dnadata/config.ini
	expect_ok git dnadata init
	assert_contains "$ERR" 'already initialised'
}

test_init_in_a_fresh_clone_creates_only_local_state() {
	new_repo
	expect_ok git dnadata init
	git clone -q "$T/repo" "$T/clone"
	cd "$T/clone"
	assert_no_file .git/dnadata
	expect_ok git dnadata init
	assert_file .git/dnadata/config.ini
	assert_eq 1 "$(git rev-list --count HEAD)"
	assert_eq "" "$(git status --porcelain)"
}

test_init_refuses_a_password_in_the_tracked_file() {
	new_repo
	commit_one a
	local before
	before=$(repo_state)
	expect_fail 1 git dnadata init --database postgresql://app:hunter2@db/app
	assert_contains "$ERR" 'contains a password'
	assert_not_contains "$ERR" 'hunter2'
	assert_eq "$before" "$(repo_state)"
}

test_init_rejects_a_bad_profile_name_and_store_url() {
	new_repo
	commit_one a
	local before
	before=$(repo_state)
	expect_fail 1 git dnadata init --profile 'no good'
	assert_contains "$ERR" "invalid profile name 'no good'"
	expect_fail 1 git dnadata init --store http://example.com
	assert_contains "$ERR" 'must start with file:// or s3://'
	assert_eq "$before" "$(repo_state)"
}

test_init_failing_after_creating_a_store_keeps_its_key() {
	new_repo
	commit_one a
	# the commit fails after the store exists: no new git object can be
	# written (what exists is packed; each .git/objects/XX is a file)
	git repack -adq && git prune-packed
	for d in $(seq 0 255); do d=.git/objects/$(printf %02x "$d"); if [ -d "$d" ]; then rmdir "$d"; fi; : >"$d"; done
	expect_fail 1 git dnadata init --store "file://$T/store"
	assert_contains "$ERR" 'were kept: run init again'
	rm -f .git/objects/[0-9a-f][0-9a-f]
	assert_file "$T/store/config"
	assert_no_file .dnadata/profiles.ini
	assert_no_file .git/dnadata/config.ini
	assert_file .git/dnadata/key
	# running it again adopts the store with that key
	expect_ok git dnadata init --store "file://$T/store"
	assert_not_contains "$ERR" 'another key'
	assert_file .dnadata/profiles.ini
}

test_init_never_removes_a_file_it_did_not_create() {
	new_repo
	commit_one a
	# a file where init wants its folder: init fails, and its undo must leave the file alone
	echo mine >.dnadata
	expect_fail 1 git dnadata init --no-commit
	assert_contains "$ERR" 'cannot create directory'
	assert_file .dnadata
	assert_eq mine "$(cat .dnadata)"
}

run_tests
