#!/usr/bin/env bash
# t-man.sh: the man page git-dnadata.1. `make install` puts it (and the bash
# completion) in place; it renders without a groff warning; it has the
# sections a man page has and every command `git dnadata -h` lists, with its
# usage, options and examples as -h prints them (it is made from them:
# scripts/gen-man.sh); and `man git-dnadata` and `git help dnadata` open it.
. "$(dirname "$0")/../lib.sh"

# gen_page: the page scripts/gen-man.sh makes from the built program, in $T/git-dnadata.1.
gen_page() {
	sh "$DD_SRCDIR/scripts/gen-man.sh" "$DD_BUILDDIR/git-dnadata" >"$T/git-dnadata.1" 2>"$T/gen.err" ||
		fail "gen-man.sh failed: $(cat "$T/gen.err")"
	assert_eq "" "$(cat "$T/gen.err")" "gen-man.sh's stderr"
}

# render PAGE: the page as man shows it, plain ASCII text.
render() {
	LC_ALL=C MANWIDTH=200 MANPAGER=cat man -l "$1" 2>"$T/man.err" | col -bx
	assert_eq "" "$(cat "$T/man.err")" "man -l's stderr"
}

listed_commands() {
	git dnadata -h | awk '/^Commands:/ { f = 1; next } f && /^$/ { exit } f { print $1 }'
}

test_make_install_puts_the_man_page_and_the_completion_in_place() {
	make -s -C "$DD_BUILDDIR" install DESTDIR="$T/inst" >"$T/install.log" 2>&1 || fail "make install: $(tail -5 "$T/install.log")"
	local page comp prog
	page=$(find "$T/inst" -path '*/share/man/man1/git-dnadata.1' -type f)
	comp=$(find "$T/inst" -path '*/share/bash-completion/completions/git-dnadata' -type f)
	prog=$(find "$T/inst" -path '*/bin/git-dnadata' -type f)
	[ -n "$page" ] || fail "no man1/git-dnadata.1 installed; installed: $(cd "$T/inst" && find . -type f)"
	[ -n "$comp" ] || fail "no bash-completion/completions/git-dnadata installed"
	[ -n "$prog" ] || fail "no bin/git-dnadata installed"
	cmp "$comp" "$DD_SRCDIR/contrib/completion/git-dnadata.bash" || fail "the installed completion differs from the source"
	# the page installed is the one made from this program's help
	assert_contains "$(render "$page")" "git-dnadata $("$prog" --version | sed -n '1s/^git-dnadata //p')"
	make -s -C "$DD_BUILDDIR" uninstall DESTDIR="$T/inst" >"$T/install.log" 2>&1 || fail "make uninstall: $(tail -5 "$T/install.log")"
	assert_eq "" "$(find "$T/inst" -type f)" "files left by make uninstall"
}

test_the_page_renders_without_warnings() {
	gen_page
	local warnings
	warnings=$(groff -man -ww -z "$T/git-dnadata.1" 2>&1)
	assert_eq "" "$warnings" "groff -man -ww warnings"
	warnings=$(LC_ALL=C MANWIDTH=80 man --warnings=all -l "$T/git-dnadata.1" 2>&1 >/dev/null)
	assert_eq "" "$warnings" "man --warnings"
}

test_the_page_has_the_sections_and_every_command() {
	gen_page
	local text cmd bad='' sec
	text=$(render "$T/git-dnadata.1")
	for sec in NAME SYNOPSIS DESCRIPTION COMMANDS "EXIT STATUS" ENVIRONMENT FILES "SEE ALSO"; do
		echo "$text" | grep -qx "$sec" || bad="$bad"$'\n'"no section $sec"
	done
	assert_contains "$text" "git-dnadata - versioned, encrypted PostgreSQL data profiles"
	for cmd in $(listed_commands); do
		echo "$text" | grep -qx "   $cmd" || bad="$bad"$'\n'"no subsection for $cmd"
		# every usage line and every example of -h, as they are
		while IFS= read -r line; do
			echo "$text" | grep -qF -- "$line" || bad="$bad"$'\n'"$cmd: not in the page: $line"
		done < <(git dnadata "$cmd" -h | sed -n -e 's/^\(usage:\|   or:\) //p' \
			-e '/^Examples:$/,/^$/{/^  [^ ]/s/^  //p}')
		# every option of its own
		for opt in $(git dnadata "$cmd" --list-opts | sed 's/=$//' | grep -vx -e --quiet -e --verbose -e --help); do
			echo "$text" | sed -n "/^   $cmd\$/,/^   [a-z]/p" | grep -q -- "$opt" ||
				bad="$bad"$'\n'"$cmd: option $opt not in its subsection"
		done
	done
	[ -z "$bad" ] || fail "the man page falls short:$bad"
}

test_man_and_git_help_open_the_installed_page() {
	make -s -C "$DD_BUILDDIR" install DESTDIR="$T/inst" >"$T/install.log" 2>&1 || fail "make install: $(tail -5 "$T/install.log")"
	local page bin
	page=$(find "$T/inst" -path '*/share/man/man1/git-dnadata.1' -type f)
	bin=$(dirname "$(find "$T/inst" -path '*/bin/git-dnadata' -type f)")
	export MANPATH=${page%/man1/git-dnadata.1} MANPAGER=cat LC_ALL=C MANWIDTH=100
	run man git-dnadata
	[ "$RC" = 0 ] || fail "man git-dnadata: exit $RC: $ERR"
	assert_contains "$OUT" "git-dnadata - versioned, encrypted"
	# git help runs `man git-dnadata` for a command git does not know itself, as for git-lfs
	PATH="$bin:$PATH" run git help dnadata
	[ "$RC" = 0 ] || fail "git help dnadata: exit $RC: $ERR"
	assert_contains "$OUT" "git-dnadata - versioned, encrypted"
	assert_contains "$OUT" "promote-schema"
}

test_gen_man_refuses_a_program_that_lists_no_commands() {
	printf '#!/bin/sh\necho "git-dnadata 0"\n' >"$T/fake"
	chmod +x "$T/fake"
	run sh "$DD_SRCDIR/scripts/gen-man.sh" "$T/fake"
	assert_ne 0 "$RC" "exit code"
	assert_contains "$ERR" "no commands"
}

run_tests
