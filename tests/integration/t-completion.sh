#!/usr/bin/env bash
# t-completion.sh: the bash completion (contrib/completion/git-dnadata.bash)
# in a real bash with git's own completion: `git dnadata <TAB>` completes the
# commands, a command's options and sub-commands, and the repository's
# profile names; `git-dnadata <TAB>` too; and git's completion loads the
# installed file on demand, as bash-completion does for git-lfs.
. "$(dirname "$0")/../lib.sh"

GIT_COMPLETION=/usr/share/bash-completion/completions/git
OURS="$DD_SRCDIR/contrib/completion/git-dnadata.bash"

# complete_line [--no-ours] WORD...: the completions bash offers for the
# command line WORD... (the last word is the one being completed), one a
# line, through the function `complete -p` names for the first word, as bash
# calls it on TAB. What it printed on stderr is left in $T/.cerr.
complete_line() {
	local source_ours=1
	[ "$1" != --no-ours ] || { source_ours=; shift; }
	[ -f "$GIT_COMPLETION" ] || fail "git's bash completion is not installed ($GIT_COMPLETION)"
	# shellcheck disable=SC2016
	bash --norc --noprofile -c '
		. "$1"; shift
		[ -z "$1" ] || . "$1"; shift
		# what bash-completion would do for a command without completion yet
		_completion_loader() { [ -z "${DD_COMPLETIONS_DIR:-}" ] || [ ! -f "$DD_COMPLETIONS_DIR/$1" ] || . "$DD_COMPLETIONS_DIR/$1"; }
		COMP_WORDS=("$@")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMP_LINE="${COMP_WORDS[*]}"
		COMP_POINT=${#COMP_LINE}
		COMPREPLY=()
		spec=$(complete -p "$1") || exit 3
		fn=${spec#*-F }; fn=${fn%% *}
		"$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
		for r in "${COMPREPLY[@]}"; do printf "%s\n" "${r% }"; done
	' complete "$GIT_COMPLETION" "${source_ours:+$OURS}" "$@" >"$T/.cout" 2>"$T/.cerr" ||
		fail "completing [$*] failed: $(cat "$T/.cerr")"
	sort "$T/.cout"
}

setup_repo() {
	new_repo
	expect_ok git dnadata init --no-commit
	expect_ok git dnadata new-profile customer1 --no-commit
	expect_ok git dnadata new-profile shop --no-commit
}

test_git_dnadata_completes_the_commands() {
	setup_repo
	local got
	got=$(complete_line git dnadata "")
	assert_eq "$( (git dnadata --list-cmds; echo help) | sort)" "$got" "every command, and help"
	assert_eq "snapshot" "$(complete_line git dnadata sn)"
	assert_eq $'stash\nstatus' "$(complete_line git dnadata st)"
}

test_a_command_s_options_are_completed() {
	setup_repo
	local got
	got=$(complete_line git dnadata snapshot --)
	# exactly what the program lists (its option table), whatever options it gains later
	assert_eq "$(git dnadata snapshot --list-opts | sort)" "$got" "snapshot's options"
	assert_contains "$got" $'--message=\n'
	assert_contains "$got" $'--no-commit\n'
	assert_contains "$got" $'--verbose'
	got=$(complete_line git dnadata restore --t)
	assert_eq "--terminate" "$got"
	got=$(complete_line git dnadata init --st)
	assert_eq "--store=" "$got" "an option taking a value ends with ="
}

test_profile_names_are_completed() {
	setup_repo
	assert_eq $'clean\ncustomer1\nshop' "$(complete_line git dnadata restore "")"
	assert_eq $'customer1' "$(complete_line git dnadata use cu)"
	assert_eq $'clean\ncustomer1\nshop' "$(complete_line git dnadata push clean "")" "push takes several"
	assert_eq $'clean\ncustomer1\nshop' "$(complete_line git dnadata new-profile x --from "")" "--from PROFILE"
	assert_eq $'shop' "$(complete_line git dnadata new-profile x --from=s)" "--from=PROFILE"
	assert_eq "" "$(complete_line git dnadata new-profile "")" "a new profile's name is not an existing one"
	assert_eq "" "$(complete_line git dnadata init --profile "")" "init --profile names a new one"
	assert_eq "" "$(cat "$T/.cerr")" "stderr"
	# from a subdirectory, and through git -C
	mkdir -p sub/dir && cd sub/dir
	assert_eq $'clean\ncustomer1\nshop' "$(complete_line git dnadata snapshot "")"
	cd "$T"
	assert_eq $'clean\ncustomer1\nshop' "$(complete_line git -C "$T/repo" dnadata restore "")"
}

test_sub_commands_are_completed() {
	setup_repo
	assert_eq $'export\nimport\npasswd' "$(complete_line git dnadata key "")"
	assert_eq $'drop\nlist\nmedia' "$(complete_line git dnadata stash "")"
	assert_eq "" "$(complete_line git dnadata stash list "")" "nothing after the sub-command"
	assert_eq "--passphrase" "$(complete_line git dnadata key import --pa)"
}

test_help_completes_the_commands() {
	setup_repo
	assert_eq $'restore' "$(complete_line git dnadata help res)"
}

test_outside_a_repository_nothing_is_printed() {
	mkdir plain && cd plain
	export GIT_CEILING_DIRECTORIES=$T
	assert_eq "" "$(complete_line git dnadata restore "")"
	assert_eq "" "$(cat "$T/.cerr")" "stderr outside a repository"
	assert_contains "$(complete_line git dnadata "")" "snapshot"
}

test_git_dnadata_itself_is_completed() {
	setup_repo
	assert_eq "snapshot" "$(complete_line git-dnadata sn)"
	assert_eq $'clean\ncustomer1\nshop' "$(complete_line git-dnadata restore "")"
	assert_eq "$(git dnadata snapshot --list-opts | sort)" "$(complete_line git-dnadata snapshot --)"
	assert_contains "$(complete_line git-dnadata snapshot --)" "--dump-only"
}

# Installed by `make install` where bash-completion looks, under the name git's
# completion asks for when it meets `git dnadata` (_completion_loader git-dnadata).
test_git_s_completion_loads_the_installed_file_on_demand() {
	setup_repo
	make -s -C "$DD_BUILDDIR" install DESTDIR="$T/inst" >"$T/install.log" 2>&1 || fail "make install: $(tail -5 "$T/install.log")"
	local f
	f=$(find "$T/inst" -path '*/share/bash-completion/completions/git-dnadata' -type f)
	[ -n "$f" ] || fail "make install put no completions/git-dnadata under $T/inst: $(find "$T/inst" -type f)"
	cmp "$f" "$OURS" || fail "the installed completion differs from contrib/completion/git-dnadata.bash"
	# without it, git's completion offers nothing for `git dnadata restore `
	assert_eq "" "$(complete_line --no-ours git dnadata restore "")"
	export DD_COMPLETIONS_DIR=${f%/git-dnadata}
	assert_eq $'clean\ncustomer1\nshop' "$(complete_line --no-ours git dnadata restore "")"
	assert_eq "snapshot" "$(complete_line --no-ours git dnadata sn)"
}

run_tests
