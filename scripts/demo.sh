#!/usr/bin/env bash
# The main job: build sstar, stamp the examples, run them, and show the
# audit trail they leave. Run it with `make demo`.
set -uo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; echo "(exit status $?)"; }

say "build"
CGO_ENABLED=0 go build -o bin/sstar ./cmd/sstar || exit 1
CGO_ENABLED=0 go build -o bin/sstar-sinks ./cmd/sstar-sinks || exit 1
sstar=bin/sstar
run $sstar --version

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r examples "$work/"
log=$work/audit.jsonl

say "stamp the examples: user.sstar.sha256 = sha256(content)"
run $sstar trust -v "$work/examples"
run $sstar verify "$work"/examples/*.star

say "run them, recording every event to $log"
for ex in rotate_logs render_config check_service sandboxed_cleanup; do
  run $sstar --audit-log "$log" "$work/examples/$ex.star"
done

say "a policy hook stops an escape attempt: the write never happens"
run $sstar --audit-log "$log" "$work/examples/sandboxed_cleanup.star" --try-escape

say "code nobody vouched for does not run"
echo 'print("edited after stamping")' >> "$work/examples/render_config.star"
run $sstar --audit-log "$log" "$work/examples/render_config.star"
run $sstar --audit-log "$log" -c 'print("hi")'

say "the audit trail: $(wc -l < "$log") events; what was done"
grep -o '"event":"[^"]*"' "$log" | sort | uniq -c | sort -rn
say "the security-relevant lines"
grep -E '"event":"(subprocess.Popen|os.remove|os.rename|sstar.abort|sstar.code_integrity_failure|sstar.run_command)"' "$log" | cut -c1-220

say "is the log intact?"
run $sstar log verify "$log"
say "edit one line, and verify again"
sed -i '5s/"event":"[^"]*"/"event":"edited"/' "$log"
run $sstar log verify "$log"
