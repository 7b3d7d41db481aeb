#!/usr/bin/env bash
# t-errors.sh: every failure of init/new-profile/use/status gives one
# "error:" line, the documented exit code, and changes nothing: HEAD, the
# index (git ls-files -s), the work tree and the local state are compared
# before and after.
. "$(dirname "$0")/../lib.sh"

repo_state() {
	git rev-parse -q --verify HEAD || echo unborn
	git ls-files -s | sha1sum
	git status --porcelain
	find . -path ./.git -prune -o -type f -print0 | sort -z | xargs -0 -r sha1sum
	if [ -d .git/dnadata ]; then find .git/dnadata -type f -print0 | sort -z | xargs -0 -r sha1sum; fi
	ls .git
}

setup() {
	new_repo
	echo a >a && git add a && git commit -q -m a
	expect_ok git dnadata init
}

no_identity() {
	mkdir -p "$T/empty-home"
	export HOME="$T/empty-home" GIT_CONFIG_NOSYSTEM=1
	unset GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL EMAIL
}

test_not_a_git_repository() {
	mkdir plain && cd plain
	export GIT_CEILING_DIRECTORIES=$T
	for cmd in "init" "new-profile x" "use x" "status"; do
		# shellcheck disable=SC2086
		expect_fail 1 git dnadata $cmd
		assert_contains "$ERR" 'error: not a git repository'
	done
	assert_eq "" "$(ls -A)"
}

test_missing_identity_on_init_changes_nothing() {
	new_repo
	no_identity
	local before
	before=$(repo_state)
	expect_fail 1 git dnadata init
	assert_contains "$ERR" 'error: Author identity unknown'
	assert_contains "$ERR" 'git config --global user.email'
	assert_eq "$before" "$(repo_state)"
	assert_no_file .dnadata
	assert_no_file .git/dnadata
	# --no-commit needs no identity
	expect_ok git dnadata init --no-commit
}

test_missing_identity_on_new_profile_changes_nothing() {
	setup
	no_identity
	local before
	before=$(repo_state)
	expect_fail 1 git dnadata new-profile customer1
	assert_contains "$ERR" 'error: Author identity unknown'
	assert_eq "$before" "$(repo_state)"
}

test_identity_from_the_environment_is_enough() {
	new_repo
	no_identity
	GIT_AUTHOR_NAME=Env GIT_AUTHOR_EMAIL=env@example.invalid GIT_COMMITTER_NAME=Env \
		GIT_COMMITTER_EMAIL=env@example.invalid expect_ok git dnadata init
	assert_eq "Env <env@example.invalid>" "$(git log -1 --format='%an <%ae>')"
}

test_bad_profile_names_are_refused() {
	setup
	local before
	before=$(repo_state)
	for name in 'a b' 'a/b' '../x' 'café' 'x.y' "$(printf 'a%.0s' {1..65})"; do
		expect_fail 1 git dnadata new-profile "$name"
		assert_contains "$ERR" 'profile name'
	done
	expect_fail 2 git dnadata new-profile -x
	expect_fail 2 git dnadata new-profile
	assert_contains "$ERR" 'missing the profile name'
	expect_fail 2 git dnadata new-profile a b
	assert_eq "$before" "$(repo_state)"
}

test_duplicate_profile_name_is_refused() {
	setup
	expect_ok git dnadata new-profile customer1
	local before
	before=$(repo_state)
	expect_fail 1 git dnadata new-profile customer1
	assert_contains "$ERR" "error: profile 'customer1' already exists in .dnadata/profiles.ini"
	expect_fail 1 git dnadata new-profile Customer1
	assert_contains "$ERR" "clash with 'customer1'"
	expect_fail 1 git dnadata new-profile c2 --from nope
	assert_contains "$ERR" "no profile 'nope'"
	assert_eq "$before" "$(repo_state)"
}

test_malformed_profiles_ini_names_file_and_line() {
	setup
	printf '[profile "x"]\nmedai = up\n' >>.dnadata/profiles.ini
	git commit -q -am broken
	local line before
	line=$(grep -n medai .dnadata/profiles.ini | cut -d: -f1)
	before=$(repo_state)
	for cmd in "new-profile y" "use clean" "status" "status --json"; do
		# shellcheck disable=SC2086
		expect_fail 1 git dnadata $cmd
		assert_contains "$ERR" "error: .dnadata/profiles.ini:$line: unknown key 'medai' in [profile \"x\"] (did you mean 'media'?)"
	done
	assert_eq "" "$OUT"
	assert_eq "$before" "$(repo_state)"
	# from a subdirectory the path is still the repository-relative one
	mkdir -p sub && cd sub
	expect_fail 1 git dnadata status
	assert_contains "$ERR" ".dnadata/profiles.ini:$line:"
}

test_malformed_config_ini_names_file_and_line() {
	setup
	printf '[database]\nactive_profile = clean\nactive_profile = clean\n' >>.git/dnadata/config.ini
	local line
	line=$(grep -n active_profile .git/dnadata/config.ini | tail -1 | cut -d: -f1)
	expect_fail 1 git dnadata status
	assert_contains "$ERR" "error: .git/dnadata/config.ini:$line: duplicate key 'active_profile'"
}

test_not_initialised_says_to_run_init() {
	new_repo
	expect_fail 1 git dnadata status
	assert_contains "$ERR" 'not set up in this repository'
	assert_contains "$ERR" "hint: run 'git dnadata init'"
}

test_unknown_command_suggests_the_closest() {
	setup
	local before
	before=$(repo_state)
	expect_fail 2 git dnadata stauts
	assert_contains "$ERR" "error: 'stauts' is not a git dnadata command (did you mean 'status'?)"
	expect_fail 2 git dnadata new-profil x
	assert_contains "$ERR" "did you mean 'new-profile'?"
	assert_eq "$before" "$(repo_state)"
}

test_unknown_option_is_a_usage_error() {
	setup
	local before
	before=$(repo_state)
	expect_fail 2 git dnadata init --stor s3://x/y
	assert_contains "$ERR" "error: unknown option '--stor' (did you mean '--store'?)"
	expect_fail 2 git dnadata new-profile x --medai up
	assert_contains "$ERR" "did you mean '--media'?"
	expect_fail 2 git dnadata status --jsn
	expect_fail 2 git dnadata use
	assert_eq "$before" "$(repo_state)"
}

test_profile_commands_check_their_argument_count() {
	setup
	local before
	before=$(repo_state)
	expect_fail 2 git dnadata verify extra
	assert_contains "$ERR" "error: verify takes no arguments ('extra' given)"
	assert_contains "$ERR" "hint: see 'git dnadata verify -h' for usage"
	for cmd in snapshot restore; do
		expect_fail 2 git dnadata $cmd clean extra
		assert_contains "$ERR" "error: too many arguments ('extra')"
		assert_contains "$ERR" "hint: see 'git dnadata $cmd -h' for usage"
	done
	expect_fail 2 git dnadata use
	assert_contains "$ERR" "error: missing the profile name"
	expect_fail 2 git dnadata use clean extra
	assert_contains "$ERR" "error: too many arguments ('extra')"
	expect_fail 1 git dnadata restore nosuch
	assert_contains "$ERR" "nosuch"
	assert_eq "$before" "$(repo_state)"
}

test_merge_conflict_on_profiles_ini_is_refused() {
	setup
	git checkout -q -b other
	sed -i 's|^# url = s3://.*|url = s3://other/x|' .dnadata/profiles.ini
	git commit -q -am other
	git checkout -q main
	sed -i 's|^# url = s3://.*|url = s3://main/x|' .dnadata/profiles.ini
	git commit -q -am main
	if git merge -q other >/dev/null 2>&1; then fail "the merge should conflict"; fi
	assert_eq "UU .dnadata/profiles.ini" "$(git status --porcelain)"
	local before
	before=$(repo_state)
	expect_fail 1 git dnadata new-profile customer1
	assert_contains "$ERR" 'error: .dnadata/profiles.ini has unresolved merge conflicts'
	assert_eq "$before" "$(repo_state)"
	# with --no-commit the conflict markers are reported with file:line
	expect_fail 1 git dnadata new-profile customer1 --no-commit
	assert_contains "$ERR" 'unresolved merge conflict marker'
	assert_eq "$before" "$(repo_state)"
	# resolved but the merge not yet committed: refused too
	git checkout -q --theirs .dnadata/profiles.ini && git add .dnadata/profiles.ini
	before=$(repo_state)
	expect_fail 1 git dnadata new-profile customer1
	assert_contains "$ERR" 'a merge is in progress'
	assert_eq "$before" "$(repo_state)"
}

test_failed_index_write_undoes_the_commit_and_the_file() {
	setup
	touch .git/index.lock
	local before
	before=$(repo_state)
	expect_fail 1 git dnadata new-profile customer1
	assert_contains "$ERR" 'error: '
	assert_eq "$before" "$(repo_state)"
	assert_not_contains "$(cat .dnadata/profiles.ini)" customer1
	rm .git/index.lock
	expect_ok git dnadata new-profile customer1
}

test_failed_init_commit_removes_what_it_created() {
	new_repo
	echo a >a && git add a && git commit -q -m a
	touch .git/refs/heads/main.lock
	local before
	before=$(repo_state)
	expect_fail 1 git dnadata init
	assert_eq "$before" "$(repo_state)"
	assert_no_file .dnadata
	assert_no_file .git/dnadata
	rm .git/refs/heads/main.lock
	expect_ok git dnadata init
}

test_ref_linked_to_a_fifo_is_refused_not_waited_on() {
	setup
	# git tracks a symlink as a link: one can point a ref at a FIFO
	mkfifo "$T/fifo"
	ln -s "$T/fifo" .dnadata/refs/clean
	git add .dnadata/refs/clean && git commit -q -m "a ref that links to a FIFO"
	expect_ok timeout 20 git dnadata status
	assert_contains "$OUT" ".dnadata/refs/clean is not a regular file"
}

run_tests
