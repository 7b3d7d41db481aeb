#!/usr/bin/env bash
# t-profiles.sh: new-profile, use and status in real repositories, with their
# commits, and the user's own work left alone.
. "$(dirname "$0")/../lib.sh"

setup() {
	new_repo
	echo a >a && git add a && git commit -q -m a
	expect_ok git dnadata init
}

test_new_profile_appends_a_section_and_commits_only_profiles_ini() {
	setup
	echo staged >s && git add s
	echo wip >>a
	expect_ok git dnadata new-profile customer1 --media var/uploads
	assert_eq "dnadata: add profile customer1" "$(git log -1 --format=%s)"
	assert_eq ".dnadata/profiles.ini" "$(git show --name-only --format= HEAD)"
	assert_contains "$(git show HEAD:.dnadata/profiles.ini)" '[profile "customer1"]
media = var/uploads'
	assert_eq " M a
A  s" "$(git status --porcelain)"
	# the comments init wrote are still there, above the new section
	assert_contains "$(cat .dnadata/profiles.ini)" '# Where snapshots are uploaded'
}

test_new_profile_from_copies_settings() {
	setup
	expect_ok git dnadata new-profile c1 --media up
	cat >>.dnadata/profiles.ini <<'INI'
exclude_tables = audit.*
terminate_connections = true
INI
	git commit -q -am "tune c1"
	expect_ok git dnadata new-profile c2 --from c1
	local ini
	ini=$(sed -n '/\[profile "c2"\]/,$p' .dnadata/profiles.ini)
	assert_eq '[profile "c2"]
media = up
exclude_tables = audit.*
terminate_connections = true' "$ini"
	expect_ok git dnadata new-profile c3 --from c1 --media other
	assert_contains "$(sed -n '/\[profile "c3"\]/,$p' .dnadata/profiles.ini)" 'media = other'
}

test_new_profile_warns_when_it_commits_the_users_own_edits() {
	setup
	sed -i 's|^# url = s3://.*|url = file:///srv/dd|' .dnadata/profiles.ini
	expect_ok git dnadata new-profile c1
	assert_contains "$ERR" 'warning: .dnadata/profiles.ini has uncommitted changes; they are committed along with the new profile'
	assert_contains "$(git show HEAD:.dnadata/profiles.ini)" 'url = file:///srv/dd'
	assert_eq "" "$(git status --porcelain)"
	expect_ok git dnadata new-profile c2
	assert_not_contains "$ERR" 'warning'
}

test_new_profile_no_commit_only_edits_the_file() {
	setup
	local head
	head=$(git rev-parse HEAD)
	expect_ok git dnadata new-profile scratch --no-commit
	assert_eq "$head" "$(git rev-parse HEAD)"
	assert_eq " M .dnadata/profiles.ini" "$(git status --porcelain)"
	expect_ok git dnadata status
	assert_contains "$OUT" 'scratch'
	assert_contains "$OUT" 'profiles.ini has uncommitted changes'
}

test_use_records_the_active_profile_locally() {
	setup
	expect_ok git dnadata new-profile customer1
	local head
	head=$(git rev-parse HEAD)
	expect_ok git dnadata use customer1
	assert_eq "$head" "$(git rev-parse HEAD)"
	assert_eq "" "$(git status --porcelain)"
	assert_contains "$(cat .git/dnadata/config.ini)" 'active_profile = customer1'
	expect_ok git dnadata status --json
	assert_contains "$OUT" '"active_profile":"customer1","active_profile_source":".git/dnadata/config.ini"'
	# the environment overrides the recorded choice
	DNADATA_PROFILE=clean expect_ok git dnadata status --json
	assert_contains "$OUT" '"active_profile":"clean","active_profile_source":"DNADATA_PROFILE"'
	expect_ok git dnadata use clean
	expect_ok git dnadata status
	assert_contains "$OUT" '* clean'
}

test_use_unknown_profile_suggests_the_closest() {
	setup
	expect_ok git dnadata new-profile customer1
	local before
	before=$(cat .git/dnadata/config.ini)
	expect_fail 1 git dnadata use custmer1
	assert_contains "$ERR" "no profile 'custmer1'"
	assert_contains "$ERR" "did you mean 'customer1'?"
	assert_eq "$before" "$(cat .git/dnadata/config.ini)"
}

test_status_shows_snapshot_ids_and_uncommitted_refs() {
	setup
	expect_ok git dnadata new-profile customer1
	local id=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
	printf 'dnadata-ref 1\nsnapshot %s\nrows 10\n' "$id" >.dnadata/refs/customer1
	expect_ok git dnadata status
	assert_contains "$OUT" "customer1  ${id:0:12}  (.dnadata/refs/customer1 has uncommitted changes)"
	assert_contains "$OUT" 'clean      no snapshot yet'
	git add .dnadata/refs/customer1 && git commit -q -m ref
	expect_ok git dnadata status --json
	assert_contains "$OUT" "\"name\":\"customer1\",\"active\":false,\"ref\":\".dnadata/refs/customer1\",\"snapshot\":\"$id\",\"ref_error\":null,\"masked\":null,\"ref_changed\":false"
	# a broken ref is reported in place, with file:line
	printf 'dnadata-ref 9\n' >.dnadata/refs/customer1
	expect_ok git dnadata status
	assert_contains "$OUT" 'invalid ref: .dnadata/refs/customer1:1: unknown ref format version 9'
}

test_status_json_is_one_valid_object_and_hides_passwords() {
	setup
	cat >>.git/dnadata/config.ini <<'INI'
[database]
url = postgresql://me:hunter2@localhost/app
INI
	expect_ok git dnadata status --json
	assert_eq 1 "$(printf '%s\n' "$OUT" | wc -l)"
	printf '%s' "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["status_version"]==1; assert d["profiles"][0]["name"]=="clean"'
	assert_contains "$OUT" 'postgresql://me:***@localhost/app'
	assert_not_contains "$OUT" hunter2
	expect_ok git dnadata status
	assert_not_contains "$OUT" hunter2
}

test_status_hides_every_secret_libpq_reads() {
	setup
	cat >>.git/dnadata/config.ini <<'INI'
[database]
url = host=localhost dbname=app sslpassword=k3yphrase password='two words'
INI
	expect_ok git dnadata status --json
	assert_contains "$OUT" "host=localhost dbname=app sslpassword=*** password=***"
	assert_not_contains "$OUT" k3yphrase
	assert_not_contains "$OUT" words
}

test_every_command_has_help_with_examples() {
	for c in init new-profile use status; do
		expect_ok git dnadata "$c" -h
		assert_contains "$OUT" "usage: git dnadata $c"
		assert_contains "$OUT" 'Examples:'
	done
	expect_ok git dnadata -h
	assert_contains "$OUT" 'new-profile'
}

test_profiles_ini_example_is_valid_and_documents_every_key() {
	setup
	cp "$DD_SRCDIR/profiles.ini.example" .dnadata/profiles.ini
	expect_ok git dnadata status --json
	assert_contains "$OUT" '"name":"customer1"'
	assert_contains "$OUT" '"store":{"url":"s3://my-bucket/myapp"'
	local key
	for key in url default_profile active_profile jobs terminate_connections lock_wait_timeout post_restore \
		database media exclude_tables exclude_data subset subset_others; do
		grep -q "^#* *$key =" "$DD_SRCDIR/profiles.ini.example" || fail "profiles.ini.example lacks $key"
		grep -q "\"$key\"" "$DD_SRCDIR/src/config/keys.c" || fail "config/keys.c has no key $key"
	done
}

test_init_refuses_any_password_and_a_malformed_database_without_quoting_them() {
	new_repo
	echo a >a && git add a && git commit -q -m a
	# sslpassword is a password too: it must not be committed
	expect_fail 1 git dnadata init --database "host=db sslpassword=k3y"
	assert_contains "$ERR" "error: --database contains a password"
	assert_not_contains "$ERR" k3y
	assert_no_file .dnadata
	# an unquoted password with a blank: libpq would quote the stray word in its message
	expect_fail 1 git dnadata init --database "host=db password=abc defghi"
	assert_contains "$ERR" "error: --database: malformed connection string: missing \"=\" after \"...\""
	assert_not_contains "$ERR" defghi
	assert_no_file .dnadata
	# a bare word is a database name, as libpq reads it
	expect_ok git dnadata init --database myapp
	assert_contains "$(cat .dnadata/profiles.ini)" "url = myapp"
}

test_profile_names_differing_only_in_case_are_refused_when_read() {
	setup
	cat >>.dnadata/profiles.ini <<'INI'

[profile "CLEAN"]
media = other
INI
	git commit -q -am "hand-edited: a second spelling of clean"
	local line
	line=$(grep -n '^\[profile "CLEAN"\]' .dnadata/profiles.ini | cut -d: -f1)
	expect_fail 1 git dnadata status
	assert_contains "$ERR" "error: .dnadata/profiles.ini:$line: profile 'CLEAN' differs from 'clean' (line "
	assert_contains "$ERR" "only in case"
	expect_fail 1 git dnadata snapshot CLEAN
	assert_contains "$ERR" "error: .dnadata/profiles.ini:$line: profile 'CLEAN' differs from 'clean'"
	assert_no_file .dnadata/refs/CLEAN
}

test_a_local_override_spelled_in_another_case_is_named_not_silently_ignored() {
	setup
	printf '[profile "CLEAN"]\nterminate_connections = true\n' >>.git/dnadata/config.ini
	expect_ok git dnadata status
	assert_contains "$ERR" "warning: .git/dnadata/config.ini:"
	assert_contains "$ERR" "[profile \"CLEAN\"] is ignored: profile names are case-sensitive, and the profile is called 'clean'"
}

test_unknown_profile_hint_offers_new_profile_only_for_a_valid_name() {
	setup
	expect_fail 1 git dnadata use staging
	assert_contains "$ERR" "hint: 'git dnadata status' lists the profiles; 'git dnadata new-profile staging' adds one"
	expect_fail 1 git dnadata use ../../etc
	assert_contains "$ERR" "error: no profile '../../etc'"
	assert_not_contains "$ERR" "new-profile ../../etc"
	assert_contains "$ERR" "hint: a profile name has letters, digits, '-' and '_', starting with a letter or digit; the profiles are: clean"
	# another spelling of an existing profile: new-profile would refuse it
	expect_fail 1 git dnadata use CLEAN
	assert_not_contains "$ERR" "new-profile CLEAN"
	assert_contains "$ERR" "hint: profile names are case-sensitive: this one is called 'clean'"
	# the same for the active profile named by the environment
	DNADATA_PROFILE=../x expect_fail 1 git dnadata snapshot
	assert_not_contains "$ERR" "new-profile ../x"
	assert_contains "$ERR" "the profiles are: clean"
}

test_missing_database_hint_names_what_is_read() {
	need_pg
	setup
	DNADATA_DATABASE="dbname=dd_no_such_db_$$" expect_fail 1 git dnadata snapshot
	assert_contains "$ERR" "database \"dd_no_such_db_$$\" does not exist"
	assert_not_contains "$ERR" "DATABASE_URL"
	assert_contains "$ERR" "hint: create the database, or fix its name where it is set: DNADATA_DATABASE, the profile's database or [database] url in .dnadata/profiles.ini or .git/dnadata/config.ini, or PGDATABASE"
}

run_tests
