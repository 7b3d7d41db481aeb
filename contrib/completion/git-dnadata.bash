# bash completion for git-dnadata                            -*- shell-script -*-
#
# Completes `git dnadata <TAB>` (git's own completion calls _git_dnadata, and
# loads this file on demand through bash-completion as completions/git-dnadata)
# and `git-dnadata <TAB>`: the commands, each command's options and
# sub-commands, and the repository's profile names.
#
# Nothing here lists them: the program answers (hidden options), so the
# completion follows the installed version:
#   git dnadata --list-cmds          the commands `git dnadata -h` lists
#   git dnadata CMD --list-opts      CMD's long options ("--name=" takes a value)
#   git dnadata CMD --list-subcmds   CMD's sub-commands (key, stash)
#   git dnadata --list-profiles      the profiles of .dnadata/profiles.ini (quiet outside a repository)
#
# `make install` puts this file in $(datadir)/bash-completion/completions/git-dnadata.
# By hand: source it after git's completion (/usr/share/bash-completion/completions/git).

# Run git-dnadata the way the command line being completed would (git -C DIR ...); no errors shown.
__git_dnadata ()
{
	if declare -F __git >/dev/null; then
		__git dnadata "$@"
	else
		git dnadata "$@" 2>/dev/null
	fi
}

# Whether CMD takes profile names as arguments: its usage lines name a <profile>
# (or <from>, <to>) outside an option's own argument.
__git_dnadata_takes_profile ()
{
	local usage
	usage=$(__git_dnadata "$1" -h | sed -n 's/^\(usage:\|   or:\) //p' |
		sed 's/--[a-z-]* <[^>]*>//g')
	case "$usage" in
	*'<profile'*|*'profile>'*|*PROFILE*|*'<from>'*|*'<to>'*) return 0 ;;
	esac
	return 1
}

# shellcheck disable=SC2154 # cur, prev, words, cword: set by git's completion
_git_dnadata ()
{
	local cmd='' sub='' subcmds c=$((${__git_cmd_idx:-0} + 1))

	# the git-dnadata command: the first word after "dnadata" that is no option
	while [ "$c" -lt "$cword" ]; do
		case "${words[c]}" in
		-*) ;;
		*) cmd=${words[c]}; break ;;
		esac
		((c++))
	done

	if [ -z "$cmd" ]; then
		case "$cur" in
		-*) __gitcomp "--help --version --quiet --verbose" ;;
		*) __gitcomp_nl "$(__git_dnadata --list-cmds; echo help)" ;;
		esac
		return
	fi
	if [ "$cmd" = help ]; then
		__gitcomp_nl "$(__git_dnadata --list-cmds)"
		return
	fi

	# an option's value
	case "$cur" in
	--from=*|--to=*|--profile=*)
		# init --profile names a new one
		[ "$cmd" = init ] || __gitcomp_nl "$(__git_dnadata --list-profiles)" "" "${cur#*=}"
		return
		;;
	--at=*)
		__git_complete_refs --cur="${cur#*=}"
		return
		;;
	--*=*)
		return # files, by bash's default completion
		;;
	-*)
		__gitcomp "$(__git_dnadata "$cmd" --list-opts | tr '\n' ' ')"
		return
		;;
	esac
	case "$prev" in
	--from|--to|--profile)
		[ "$cmd" = init ] || __gitcomp_nl "$(__git_dnadata --list-profiles)"
		return
		;;
	--at)
		__git_complete_refs
		return
		;;
	-m|--message|--store|--database|--media|--worktree-database|--sql|--from-dump)
		return
		;;
	esac

	# a sub-command (key export, stash drop), then its arguments
	subcmds=$(__git_dnadata "$cmd" --list-subcmds)
	if [ -n "$subcmds" ]; then
		sub=$(__git_find_on_cmdline "$subcmds")
		[ -n "$sub" ] || __gitcomp_nl "$subcmds"
		return
	fi
	if __git_dnadata_takes_profile "$cmd"; then
		__gitcomp_nl "$(__git_dnadata --list-profiles)"
	fi
}

# `git-dnadata <TAB>` too: through git's completion (loaded here if it is not yet).
if ! declare -F __git_complete >/dev/null; then
	if declare -F _completion_loader >/dev/null; then
		_completion_loader git
	elif [ -f /usr/share/bash-completion/completions/git ]; then
		# shellcheck disable=SC1091
		. /usr/share/bash-completion/completions/git
	fi
fi
if declare -F __git_complete >/dev/null; then
	__git_complete git-dnadata _git_dnadata
fi
