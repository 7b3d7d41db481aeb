#!/usr/bin/env bash
# t-help.sh: every command `git dnadata -h` lists has its own help (a usage
# line, examples that run it, options a reader can tell apart) and its own
# section in README.md with an example, in the order -h lists them. The list
# comes from the program, so a command added later is checked too. Also the
# hidden questions the bash completion asks (--list-cmds, --list-opts).
. "$(dirname "$0")/../lib.sh"

# The commands `git dnadata -h` lists, one a line.
listed_commands() {
	git dnadata -h | awk '/^Commands:/ { f = 1; next } f && /^$/ { exit } f { print $1 }'
}

# README.md's section for command $1: from "### $1" to the next heading of level 1-3.
readme_section() {
	awk -v h="### $1" '$0 == h { f = 1; next } f && /^#{1,3} / { exit } f { print }' "$DD_SRCDIR/README.md"
}

test_help_lists_the_commands() {
	local cmds
	cmds=$(listed_commands)
	[ "$(echo "$cmds" | wc -l)" -ge 20 ] || fail "too few commands in git dnadata -h:"$'\n'"$cmds"
	assert_contains "$cmds" snapshot
	assert_not_contains "$cmds" spare "hidden commands are not listed"
}

test_every_listed_command_has_usage_and_examples() {
	local cmd bad='' ex
	for cmd in $(listed_commands); do
		run git dnadata "$cmd" -h
		if [ "$RC" != 0 ] || [ -n "$ERR" ]; then
			bad="$bad"$'\n'"$cmd: -h exits $RC, stderr: $ERR"
			continue
		fi
		case "$(echo "$OUT" | head -1)" in
		"usage: git dnadata $cmd"*) ;;
		*) bad="$bad"$'\n'"$cmd: the first line is not 'usage: git dnadata $cmd ...'" ;;
		esac
		# the lines under "Examples:", up to a blank line; one of them runs the command
		ex=$(echo "$OUT" | awk '/^Examples:$/ { f = 1; next } f && /^$/ { exit } f { print }')
		if [ -z "$ex" ]; then
			bad="$bad"$'\n'"$cmd: no 'Examples:' block in -h"
		elif ! echo "$ex" | grep -q "git dnadata $cmd\\b"; then
			bad="$bad"$'\n'"$cmd: no example runs 'git dnadata $cmd'"
		fi
	done
	[ -z "$bad" ] || fail "commands whose -h falls short:$bad"
}

test_help_command_shows_the_same_help() {
	local cmd
	for cmd in $(listed_commands); do
		expect_ok git dnadata "$cmd" -h
		local direct=$OUT
		expect_ok git dnadata help "$cmd"
		assert_eq "$direct" "$OUT" "git dnadata help $cmd"
	done
}

# Each option line of -h: "-x, --name <arg>" then two or more blanks and its
# help, or (too long for the column) its help alone on the next line.
test_every_option_line_separates_the_option_from_its_help() {
	local cmd bad=
	for cmd in $(listed_commands); do
		bad="$bad$(git dnadata "$cmd" -h | awk -v c="$cmd" '
			want_help { if ($0 !~ /^                                 [^ ]/) print c ": no help under: " prev; want_help = 0; next }
			/^    (-[A-Za-z], |    )--/ {
				if ($0 ~ /^    (-[A-Za-z], |    )--[a-z0-9-]+( <[^>]+>)?$/) { want_help = 1; prev = $0 }
				else if ($0 !~ /^    (-[A-Za-z], |    )--[a-z0-9-]+( <[^>]+>)?   *[^ ]/) print c ": " $0
			}')"
	done
	[ -z "$bad" ] || fail "option lines run into their help:"$'\n'"$bad"
}

test_every_listed_command_has_a_readme_section_with_an_example() {
	local cmd bad='' section
	for cmd in $(listed_commands); do
		section=$(readme_section "$cmd")
		if [ -z "$section" ]; then
			bad="$bad"$'\n'"$cmd: no '### $cmd' section in README.md"
		elif ! echo "$section" | grep -q "git dnadata $cmd\\b"; then
			bad="$bad"$'\n'"$cmd: README.md's section has no example of 'git dnadata $cmd'"
		fi
	done
	[ -z "$bad" ] || fail "README.md falls short:$bad"
}

test_readme_command_sections_follow_the_help_order() {
	local cmds headings
	cmds=$(listed_commands)
	# the "### NAME" headings of README.md that name a listed command, in their order
	headings=$(grep -E '^### [a-z-]+$' "$DD_SRCDIR/README.md" | sed 's/^### //' | grep -Fxf <(echo "$cmds"))
	assert_eq "$cmds" "$headings" "README.md's command sections, in the order of git dnadata -h"
}

test_list_cmds_is_the_help_list() {
	expect_ok git dnadata --list-cmds
	assert_eq "$(listed_commands)" "$OUT" "--list-cmds"
	assert_eq "" "$ERR"
}

# --list-opts answers from the same table -h prints: the same long options.
test_list_opts_names_the_options_help_shows() {
	local cmd shown listed
	for cmd in $(listed_commands); do
		shown=$(git dnadata "$cmd" -h | sed -n 's/^    \(-[A-Za-z], \|    \)\(--[a-z0-9-]*\).*/\2/p' | sort)
		expect_ok git dnadata "$cmd" --list-opts
		listed=$(echo "$OUT" | sed 's/=$//' | sort)
		assert_eq "$shown" "$listed" "$cmd --list-opts"
	done
	expect_ok git dnadata init --list-opts
	assert_contains "$OUT" $'--store=\n'
	assert_contains "$OUT" $'--no-commit\n'
}

test_list_subcmds_names_the_sub_commands_of_the_usage() {
	expect_ok git dnadata key --list-subcmds
	assert_eq $'export\nimport\npasswd' "$OUT"
	expect_ok git dnadata stash --list-subcmds
	assert_eq $'list\ndrop\nmedia' "$OUT"
	expect_ok git dnadata snapshot --list-subcmds
	assert_eq "" "$OUT"
}

test_list_profiles_is_quiet_outside_a_repository() {
	mkdir plain && cd plain
	export GIT_CEILING_DIRECTORIES=$T
	run git dnadata --list-profiles
	assert_eq 1 "$RC" "exit code outside a repository"
	assert_eq "" "$OUT$ERR" "output outside a repository"
	new_repo
	run git dnadata --list-profiles
	assert_eq 1 "$RC" "exit code in a repository without git-dnadata"
	assert_eq "" "$OUT$ERR" "output in a repository without git-dnadata"
	expect_ok git dnadata init --no-commit
	expect_ok git dnadata new-profile customer1 --no-commit
	expect_ok git dnadata --list-profiles
	assert_eq $'clean\ncustomer1' "$OUT"
}

run_tests
