#!/usr/bin/env bash
# t-messages.sh: text from files, the command line and the server reaches the
# terminal only with control characters and invalid UTF-8 escaped.
. "$(dirname "$0")/../lib.sh"

setup() {
	new_repo
	echo a >a && git add a && git commit -q -m a
	expect_ok git dnadata init
}

# no_raw_controls TEXT: fails if TEXT holds ESC, BEL, CSI (C1) or invalid UTF-8.
no_raw_controls() {
	if printf '%s' "$1" | LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]'; then
		fail "raw control characters reached the terminal: $(printf '%s' "$1" | od -c | head -5)"
	fi
	printf '%s' "$1" | iconv -f UTF-8 -t UTF-8 >/dev/null 2>&1 || fail "invalid UTF-8 reached the terminal"
	if printf '%s' "$1" | LC_ALL=C grep -q $'\xc2[\x80-\x9f]'; then
		fail "a C1 control character reached the terminal"
	fi
}

test_escape_in_a_profiles_ini_key_is_escaped_in_the_error() {
	setup
	printf '[database]\n\x1b]0;pwned\x07 = 1\n' >>.dnadata/profiles.ini
	expect_fail 1 git dnadata status
	no_raw_controls "$ERR"
	assert_contains "$ERR" '\x1b]0;pwned\x07'
	assert_contains "$ERR" "profiles.ini:"
}

test_escape_in_a_section_name_is_escaped() {
	setup
	printf '[prof\x1b[2Jile "x"]\n' >>.dnadata/profiles.ini
	expect_fail 1 git dnadata status
	no_raw_controls "$ERR"
	assert_contains "$ERR" '\x1b[2J'
}

test_invalid_utf8_and_c1_in_a_command_line_name_are_escaped() {
	setup
	expect_fail 1 git dnadata use $'bad\xc2\x9b31m\xff'
	no_raw_controls "$ERR"
	assert_contains "$ERR" '\u009b31m\xff'
	expect_fail 1 git dnadata snapshot $'\x1b]0;t\x07'
	no_raw_controls "$ERR"
}

test_escape_in_a_warning_is_escaped() {
	setup
	# an unknown key is a warning, not an error: it still must not drive the terminal
	printf '[database]\nunknown_\x1b[31m_key = 1\n' >>.dnadata/profiles.ini
	run git dnadata status
	no_raw_controls "$ERR$OUT"
}

test_escape_in_a_setting_value_is_refused_and_escaped() {
	setup
	printf '[store]\nurl = file:///tmp/x\033]0;pwned\007\n' >>.dnadata/profiles.ini
	expect_fail 1 git dnadata status
	no_raw_controls "$OUT$ERR"
	assert_contains "$ERR" "control character"
}

test_restore_at_a_revision_without_the_ref_hints_at_the_commits_that_have_one() {
	repo_with_db hint
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"
	local before
	before=$(git rev-parse HEAD)
	expect_ok git dnadata snapshot
	expect_fail 1 git dnadata restore --at "$before"
	assert_contains "$ERR" "has no ref file at $before"
	assert_not_contains "$ERR" "git dnadata snapshot"
	assert_contains "$ERR" "hint: \`git log --oneline -- .dnadata/refs/clean\`"
	# the hinted commands work
	local commit
	commit=$(git log --format=%H -1 -- .dnadata/refs/clean)
	[ -n "$commit" ] || fail "the hinted git log lists no commit"
	psql_q "$DB" "UPDATE t SET id = 2"
	expect_ok git dnadata restore clean --at "$commit"
	assert_eq 1 "$(psql_q "$DB" "SELECT id FROM t")"
}

run_tests
