#!/usr/bin/env bash
# Case 8: hostile archives imported while guildd is probed: a run whose guild.d links to
# another run, a 1 GiB gzip bomb of about 1 MiB, a bomb of many 40 MiB files, an id with
# terminal escapes, and world-writable modes. All but the last are refused whole; the
# last imports with modes 0644/0755, and its run.db has every line.
CASE_NAME="8 hostile archives"
source "$(dirname "$0")/lib.sh"
ticker_project
guild daemon start >/dev/null
start_run
wait_for "the run to print 200 lines" bash -c "[ \$(wc -l < '$RUN_DIR/guild.d/stdout.log') -ge 200 ]"
touch "$CASE_DIR/go"
wait_for "the run's end" run_ended
guild export "$RUN_ID" "$CASE_DIR/good.tar.gz" >/dev/null
craft() {
  python3 - "$CASE_DIR/good.tar.gz" "$CASE_DIR/$1.tar.gz" "$2" <<'PY'
import io, json, os, sqlite3, sys, tarfile, tempfile
src, dest, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
class Zeros(io.RawIOBase):
    def __init__(self, n): self.n = n
    def readable(self): return True
    def readinto(self, b):
        k = min(len(b), self.n); b[:k] = bytes(k); self.n -= k; return k
with tarfile.open(src) as a, tarfile.open(dest, "w:gz", compresslevel=9) as b:
    run = a.getnames()[0].split("/")[0]
    for m in a.getmembers():
        rel = m.name[len(run) + 1:]
        if "link" in spec and (rel == "guild.d" or rel.startswith("guild.d/")):
            continue
        if "mode" in spec and m.isfile():
            m.mode = 0o777
        data = a.extractfile(m) if m.isfile() else None
        if rel == "guild.d/run.db" and "id" in spec:
            with tempfile.TemporaryDirectory() as t:
                p = os.path.join(t, "run.db"); open(p, "wb").write(data.read())
                db = sqlite3.connect(p); db.execute("UPDATE attr SET value = ? WHERE name = 'id'", (spec["id"],)); db.commit(); db.close()
                raw = open(p, "rb").read()
            m.size = len(raw); data = io.BytesIO(raw)
        b.addfile(m, data)
    if "link" in spec:
        l = tarfile.TarInfo(run + "/guild.d"); l.type = tarfile.SYMTYPE; l.linkname = spec["link"]; b.addfile(l)
    for i, n in enumerate(spec.get("zeros", [])):
        t = tarfile.TarInfo("%s/zeros-%d.bin" % (run, i)); t.size = n
        b.addfile(t, io.BufferedReader(Zeros(n), 1 << 20))
PY
}
craft link "{\"link\": \"$RUN_DIR/guild.d\"}"
craft bomb '{"zeros": [1073741824]}'
craft many '{"zeros": [41943040, 41943040, 41943040, 41943040, 41943040, 41943040, 41943040, 41943040]}'
craft escape '{"id": "x\u001b[2J\nforged"}'
craft modes '{"mode": true}'
probe_start
refused=0
for name in link bomb many escape; do
  if out=$(guild import "$CASE_DIR/$name.tar.gz" --rename 2>&1); then echo "$name imported: $out" >&2; else refused=$((refused + 1)); fi
  printf '%s: %s\n' "$name" "$out" >> "$CASE_DIR/refusals.log"
done
leftovers=$(find "$PROJECT/runs" -mindepth 1 -maxdepth 1 ! -name "$RUN_ID" | wc -l)
id_kept=$(sqlite3 "file:$RUN_DIR/guild.d/run.db?mode=ro" "select value from attr where name = 'id'")
bomb_size=$(stat -c %s "$CASE_DIR/bomb.tar.gz")
copy=$(guild import "$CASE_DIR/modes.tar.gz" --rename | awk '{print $4}')
probe_stop
loose=$(find "$PROJECT/runs/$copy" -perm /022 ! -type l | wc -l)
src_dir=$RUN_DIR
RUN_DIR="$PROJECT/runs/$copy"
stored=$(lines_stored)
RUN_DIR=$src_dir
[ "$id_kept" = "$RUN_ID" ] && kept="other run's id kept" || kept="other run's id CHANGED"
result "$(lines_written)" "$stored" "$refused of 4 refused (bomb $((bomb_size / 1024)) KiB), $leftovers left behind, $kept; 0777 archive: $loose loose modes after import"
