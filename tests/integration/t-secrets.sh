#!/usr/bin/env bash
# t-secrets.sh: no secret leaks (issue 20, DESIGN §9). With a known store
# key, passphrase, S3 secret key and database password, two clones run
# init, key import, snapshot, push, fetch, restore, status, verify, key
# export and doctor -v on an S3 store, and the failing variants (a wrong S3
# secret, the server down). None of the secrets (nor the key's bytes raw, in
# hex or in base64) may appear in any command's stdout or stderr, in any file
# under the test's folder (both repositories with their .git, caches and
# state, HOME, a download of the bucket, and the text of the git history)
# except the key files themselves and, for the database password alone, the
# local config.ini it was put in; nor in the command line of any process
# while they run: a sampler reads every /proc/*/cmdline every 10 ms, and the
# runs pause where children live (pg_dump, held by a wrapper until the
# sampler has looked twice; a post_restore command). The environment of
# git-dnadata's children may hold a secret only where the design puts it:
# the database password as PGPASSWORD for pg_dump (pg/pgdump.c), and
# whatever the user's own environment gives the post_restore commands (they
# run as the user's commands do); the figures are shown as TAP notes.
# needs: s3
# serial: samples the command lines and environments of every process on the machine (tests/run runs it alone)
. "$(dirname "$0")/../lib.sh"

export DNADATA_SKIP=1

# The sampler: every 10 ms, every process's command line, and the
# environment of every descendant of a git-dnadata process (its own
# environment holds the user's AWS variables by design; main.c makes it
# undumpable), searched for the secrets (read from a file, never from its
# own command line). Writes DIR/scans (a counter), DIR/leaks, DIR/envs and
# DIR/children as it goes; stops when DIR/stop appears.
write_sampler() {
	cat >"$T/sampler.py" <<'PY'
import os, sys, time
secrets = {}
with open(sys.argv[1], "rb") as f:
    for line in f.read().split(b"\n"):
        if line:
            name, val = line.split(b" ", 1)
            secrets[name.decode()] = val
out = sys.argv[2]
found = {"leaks": set(), "envs": set(), "children": set()}
def put(name, text):
    tmp = os.path.join(out, "." + name)
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, os.path.join(out, name))
n = 0
while not os.path.exists(os.path.join(out, "stop")):
    procs = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid, "rb") as f:
                st = f.read()
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read()
            comm = st[st.index(b"(") + 1:st.rindex(b")")].decode(errors="replace")
            ppid = int(st[st.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        procs[int(pid)] = (comm, ppid, cmd)
    changed = False
    for pid, (comm, ppid, cmd) in procs.items():
        for name, val in secrets.items():
            if val in cmd and "%s: %s" % (comm, name) not in found["leaks"]:
                found["leaks"].add("%s: %s" % (comm, name))
                changed = True
        p, hops, ours = ppid, 0, False
        while p in procs and hops < 64:
            if procs[p][0] == "git-dnadata":
                ours = True
                break
            p, hops = procs[p][1], hops + 1
        if not ours or comm == "git-dnadata":
            continue
        if comm not in found["children"]:
            found["children"].add(comm)
            changed = True
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read()
        except OSError:
            continue
        for var in env.split(b"\0"):
            k, _, v = var.partition(b"=")
            for name, val in secrets.items():
                e = "%s %s=<%s>" % (comm, k.decode(errors="replace"), name)
                if val in v and e not in found["envs"]:
                    found["envs"].add(e)
                    changed = True
    n += 1
    if changed or n == 1:
        for k, v in found.items():
            put(k, "".join(x + "\n" for x in sorted(v)))
    put("scans", "%d\n" % n)
    time.sleep(0.01)
PY
}

# A known key, passphrase, database password and S3 secret (and a wrong one), as "NAME VALUE"
# lines in $T/secrets (mode 0600): every form of the key the code could print.
make_secrets() {
	KEYHEX=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
	PASS="pass-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	WRONG="wrong${DD_S3_SECRET_KEY:5}"
	DBPW=$DD_TEST_PW_PASSWORD
	install -m 600 /dev/null "$T/secrets"
	{
		echo "key-hex $KEYHEX"
		echo "key-HEX ${KEYHEX^^}"
		echo "key-base64 $(printf '%s' "$KEYHEX" | xxd -r -p | base64 -w0 | tr -d '=')"
		echo "key-base64url $(printf '%s' "$KEYHEX" | xxd -r -p | base64 -w0 | tr -d '=' | tr '+/' '-_')"
		echo "passphrase $PASS"
		echo "s3-secret $DD_S3_SECRET_KEY"
		echo "wrong-s3-secret $WRONG"
		echo "db-password $DBPW"
	} >>"$T/secrets"
	printf 'dnadata-key 1\nkey %s\n' "$KEYHEX" >"$T/known.key"
	chmod 600 "$T/known.key"
}

# pause_wrappers: $T/bin holds pg_dump, pg_restore and psql scripts that run the real ones
# (DNADATA_PG_BINDIR points there); the pre-data pg_dump first creates $T/pause/at and waits
# for a line on the fifo $T/pause/go.
pause_wrappers() {
	local tool
	mkdir -p "$T/bin" "$T/pause"
	mkfifo "$T/pause/go"
	for tool in pg_dump pg_restore psql; do
		cat >"$T/bin/$tool" <<SH
#!/bin/bash
case " \$* " in *" --section=pre-data "*) : >"$T/pause/at"; read -r _ <"$T/pause/go" ;; esac
exec "$DD_PG_BINDIR/$tool" "\$@"
SH
		chmod +x "$T/bin/$tool"
	done
	export DNADATA_PG_BINDIR=$T/bin
}

# sampled: wait until the sampler has made two whole scans since now
sampled() {
	local n0 i
	n0=$(cat "$T/sample/scans" 2>/dev/null || echo 0)
	for i in $(seq "$DD_WAIT_POLLS"); do
		[ "$(cat "$T/sample/scans" 2>/dev/null || echo 0)" -ge $((n0 + 2)) ] && return 0
		sleep 0.05
	done
	fail "the sampler stopped scanning"
}

# paused_run NAME CMD...: CMD in the background (its output in $T/out/NAME.{out,err}); once it
# reached the pause ($T/pause/at), two scans, then it goes on; RC is its exit.
paused_run() {
	local name=$1 pid i
	shift
	rm -f "$T/pause/at"
	"$@" >"$T/out/$name.out" 2>"$T/out/$name.err" </dev/null &
	pid=$!
	for i in $(seq "$DD_WAIT_POLLS"); do
		[ -e "$T/pause/at" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	[ -e "$T/pause/at" ] || fail "$name never reached its pause: $(cat "$T/out/$name.err")"
	sampled
	echo go >"$T/pause/go"
	wait "$pid" && RC=0 || RC=$?
	OUT=$(cat "$T/out/$name.out") ERR=$(cat "$T/out/$name.err")
}

# logged NAME CMD...: run (lib.sh) with the output kept in $T/out/NAME.{out,err}
logged() {
	local name=$1
	shift
	run "$@"
	printf '%s' "$OUT" >"$T/out/$name.out"
	printf '%s' "$ERR" >"$T/out/$name.err"
}

ok() {
	logged "$@"
	[ "$RC" = 0 ] || fail "$1 failed ($RC): $ERR"
}

# scan_files: no secret in any file under $T but the key files and the secrets list (and the
# database password in the config.ini holding it); the git history's text included.
scan_files() {
	local r
	for r in a b; do git -C "$T/$r" log --all -p >"$T/out/history-$r.txt"; done
	# the scan can fail: a planted file is found
	printf 'x%sx' "$PASS" >"$T/out/control"
	scan_once && fail "the scan missed the control file"
	assert_eq "passphrase in out/control" "$(cat "$T/out/.scan")"
	rm "$T/out/control"
	scan_once || fail "secrets in files: $(cat "$T/out/.scan")"
	tap_note "files scanned: $(cat "$T/out/.scan")"
}

scan_once() {
	/usr/bin/python3 - "$T" <<'PY' >"$T/out/.scan"
import os, sys
t = sys.argv[1]
secrets = {}
for line in open(os.path.join(t, "secrets"), "rb").read().split(b"\n"):
    if line:
        k, v = line.split(b" ", 1)
        secrets[k.decode()] = v
secrets["key-raw"] = bytes.fromhex(secrets["key-hex"].decode())
skip = {os.path.join(t, p) for p in ("secrets", "known.key", "exported.key", "a/.git/dnadata/key",
                                      "b/.git/dnadata/key", "sampler.py")}
db_ok = {os.path.join(t, p) for p in ("a/.git/dnadata/config.ini", "b/.git/dnadata/config.ini")}
bad, files = [], 0
for root, dirs, names in os.walk(t):
    for n in names:
        p = os.path.join(root, n)
        if p in skip or os.path.islink(p) or not os.path.isfile(p):
            continue
        try:
            data = open(p, "rb").read()
        except OSError:
            continue
        files += 1
        for k, v in secrets.items():
            if v in data and not (k == "db-password" and p in db_ok):
                bad.append("%s in %s" % (k, os.path.relpath(p, t)))
print("\n".join(bad) if bad else "%d files" % files)
sys.exit(1 if bad else 0)
PY
}

test_no_secret_in_output_files_or_command_lines() {
	s3_env
	# the harness's own copies of the secrets stay in this shell: what the children get is ours to judge
	export -n DD_S3_SECRET_KEY DD_S3_SECRET_KEY2 DD_TEST_PW_PASSWORD
	make_secrets
	write_sampler
	pause_wrappers
	mkdir -p "$T/out" "$T/sample"
	/usr/bin/python3 "$T/sampler.py" "$T/secrets" "$T/sample" &
	local sampler=$! b url control i
	sampled
	# the sampler can fail: a process of ours with the wrong secret on its command line is seen
	(exec -a "control-$WRONG" sleep 600) &
	control=$!
	for i in $(seq "$DD_WAIT_POLLS"); do
		grep -q 'wrong-s3-secret' "$T/sample/leaks" 2>/dev/null && break
		sleep 0.05
	done
	kill "$control"
	wait "$control" || true
	assert_eq "sleep: wrong-s3-secret" "$(cat "$T/sample/leaks")" "the sampler missed the control"
	b=$(s3_bucket secrets)
	url="s3://$b/st"
	DB=$(pg_newdb secrets)
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 5000) i"
	local conn="host=127.0.0.1 port=$PGPORT user=$DD_TEST_PW_USER dbname=$DB"

	# clone A: the known key in place (key import needs a store), a store made with it and the
	# passphrase, the database password in config.ini
	new_repo "$T/a"
	mkdir -m 700 .git/dnadata
	install -m 600 "$T/known.key" .git/dnadata/key
	DNADATA_PASSPHRASE=$PASS ok init-a git dnadata init --database "dbname=$DB" --store "$url"
	cmp -s "$T/known.key" .git/dnadata/key || fail "init replaced the known key"
	printf '[profile "clean"]\ndatabase = %s password=%s\n' "$conn" "$DBPW" >>.git/dnadata/config.ini
	paused_run snapshot-a git dnadata snapshot --dump-only
	[ "$RC" = 0 ] || fail "snapshot failed: $ERR"
	grep -qx pg_dump "$T/sample/children" || fail "the sampler never saw pg_dump: $(cat "$T/sample/children")"
	s3_proxy_start 1.0 7 delay 0.05
	ok push-a git dnadata push
	s3_proxy_stop >/dev/null
	ok status-a git dnadata status
	ok verify-a git dnadata verify --read-data
	ok doctor-a git dnadata -v doctor
	ok export-a git dnadata key export "$T/exported.key"
	AWS_SECRET_ACCESS_KEY=$WRONG logged push-wrong-a git dnadata push
	[ "$RC" != 0 ] || fail "push with a wrong secret passed"
	AWS_SECRET_ACCESS_KEY=$WRONG logged doctor-wrong-a git dnadata -v doctor
	[ "$RC" != 0 ] || fail "doctor with a wrong secret passed"

	# clone B: joins with the passphrase, fetches, restores (pausing in its post_restore command)
	git clone -q "$T/a" "$T/b"
	cd "$T/b"
	local cdb
	cdb=$(pg_newdb secretsb)
	DNADATA_PASSPHRASE=$PASS ok key-import-b git dnadata key import --passphrase
	DNADATA_DATABASE="dbname=$cdb" ok init-b git dnadata init
	printf '[profile "clean"]\ndatabase = host=127.0.0.1 port=%s user=%s dbname=%s password=%s\n' \
		"$PGPORT" "$DD_TEST_PW_USER" "$cdb" "$DBPW" >>.git/dnadata/config.ini
	printf 'post_restore = : >"%s"; read -r _ <"%s"\n' "$T/pause/at" "$T/pause/go" >>.git/dnadata/config.ini
	ok fetch-b git dnadata fetch
	paused_run restore-b git dnadata restore
	[ "$RC" = 0 ] || fail "restore failed: $ERR"
	assert_eq 5000 "$(psql_q "$cdb" "SELECT count(*) FROM t")"
	sed -i '/^post_restore = /d' .git/dnadata/config.ini
	ok status-b git dnadata status
	ok verify-b git dnadata verify
	ok doctor-b git dnadata -v doctor
	AWS_SECRET_ACCESS_KEY=$WRONG logged fetch-wrong-b git dnadata fetch
	[ "$RC" != 0 ] || fail "fetch with a wrong secret passed"
	printf '[store]\nretries = 0\n' >>.git/dnadata/config.ini
	AWS_ENDPOINT_URL=$(s3_dead_endpoint) logged fetch-down-b git dnadata fetch
	[ "$RC" != 0 ] || fail "fetch with the server down passed"
	AWS_ENDPOINT_URL=$(s3_dead_endpoint) logged restore-down-b git dnadata restore --force
	AWS_ENDPOINT_URL=$(s3_dead_endpoint) logged doctor-down-b git dnadata -v doctor
	[ "$RC" != 0 ] || fail "doctor with the server down passed"
	sampled
	: >"$T/sample/stop"
	wait "$sampler"

	s3_aws s3 cp --recursive "s3://$b/" "$T/bucket" >/dev/null
	assert_eq "sleep: wrong-s3-secret" "$(cat "$T/sample/leaks")" "secrets on a command line"
	tap_note "children seen: $(tr '\n' ' ' <"$T/sample/children")"
	tap_note "secrets in children's environments: $(tr '\n' ' ' <"$T/sample/envs")"
	# only the database password, as PGPASSWORD, for pg_dump; the user's own environment for post_restore
	assert_eq "" "$(grep -v -e '^pg_dump PGPASSWORD=<db-password>$' -e '^sh ' "$T/sample/envs" || true)" \
		"a secret in a child's environment"
	tap_note "sampler: $(cat "$T/sample/scans") scans"
	scan_files
}

run_tests
