#!/bin/bash
# `npm test`: build, type-check the tests (npm run typecheck:test, tsconfig.test.json),
# then the three vitest projects (vitest.config.ts):
#   unit    on the host, always;
#   kernel  + e2e need root and a kernel that can carry ESP.  They run directly
#           when the host kernel can (probe: add an ESP SA in a throw-away netns),
#           else inside ONE scripts/vm-run boot (Debian's stock kernel under QEMU),
#           else they are reported as SKIPPED (a failure when CI=true).
# Every project writes a JSON report (.vitest-results-<project>.json in the
# repository root, shared read-write with the VM); the closing line aggregates
# them:  Tests: N passed, N failed, N skipped
# and the exit status is non-zero when anything failed or no test ran at all.
#
# Environment:
#   IKEV2D_TEST_KERNEL=auto|host|vm|skip   where kernel+e2e run (default auto)
#   IKEV2D_TEST_VM_TIMEOUT=SEC             vm-run --timeout (default 1500)
#   IKEV2D_TEST_VM_MEM=SIZE                guest RAM (default 2G)
#   IKEV2D_TEST_NO_BUILD=1                 skip `npm run build` (already built)
# Arguments are passed to every vitest run (e.g. a file filter or -t NAME).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
VITEST=$ROOT/node_modules/.bin/vitest
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f s", b-a}'; }
say() { printf '\n=== %s\n' "$*"; }
[[ -t 1 ]] || export NO_COLOR=1   # plain logs in CI and through vm-run

# run_project NAME [VITEST ARGS...]: one vitest project with console + JSON
# reporters; the exit status goes to .vitest-results-NAME-rc.json.
run_project() {
  local name=$1; shift
  local report=$ROOT/.vitest-results-$name.json rcfile=$ROOT/.vitest-results-$name-rc.json rc t
  local reporter=default
  [[ $name == unit ]] || reporter=verbose   # slow suites: one line per test as it ends
  rm -f "$report" "$rcfile"
  t=$(now)
  # --passWithNoTests: a project without test files yet is zero tests, not a crash
  "$VITEST" run --project "$name" --passWithNoTests --reporter="$reporter" --reporter=json \
    --outputFile.json="$report" "$@"
  rc=$?
  printf '{"rc":%d}\n' "$rc" > "$rcfile"
  echo "--- $name: vitest exit $rc after $(since "$t")"
  return 0
}

# Internal: the part that runs inside the VM (or directly on an ESP-capable host).
if [[ ${1:-} == --kernel-suites ]]; then
  shift
  echo "kernel suites on $(uname -r) (VM_RUN=${VM_RUN:-0})"
  run_project kernel "$@"
  run_project e2e "$@"
  exit 0
fi

T_ALL=$(now)
FAIL_NOTES=()
for p in unit kernel e2e; do rm -f ".vitest-results-$p.json" ".vitest-results-$p-rc.json"; done
rm -f .vitest-results-summary.json

# A failure before any test ran (build, type check): one failure in the usual closing line.
fail_before_tests() {
  echo "$1" >&2
  echo
  echo "Tests: 0 passed, 1 failed, 0 skipped"
  echo '{"passed":0,"failed":1,"skipped":0,"line":"Tests: 0 passed, 1 failed, 0 skipped"}' > .vitest-results-summary.json
  exit 1
}

# 1. Build (addon + TypeScript).  A build failure is a real failure.
if [[ -z ${IKEV2D_TEST_NO_BUILD:-} ]]; then
  say "build (npm run build)"
  t=$(now)
  npm run build || fail_before_tests "BUILD FAILED after $(since "$t")"
  echo "--- build took $(since "$t")"
fi

# 2. Type check of the tests, helpers and scripts with the sources (tsconfig.test.json);
#    vitest strips types without checking them.  A type error is a real failure.
say "type check of the tests (npm run typecheck:test)"
t=$(now)
npm run --silent typecheck:test || fail_before_tests "TYPE CHECK FAILED (npm run typecheck:test) after $(since "$t")"
echo "--- type check took $(since "$t")"

# 3. Unit suite on the host.
say "unit suite (host)"
run_project unit "$@"

# 4. Kernel + e2e suites.
esp_probe() {   # 0 when this kernel accepts an ESP SA (the 6.x host here does not)
  [[ $EUID == 0 ]] && command -v ip >/dev/null || return 1
  local ns=ikev2d-esp-probe-$$ ok=1
  ip netns add "$ns" 2>/dev/null || return 1
  ip -n "$ns" xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x100 mode tunnel \
    aead 'rfc4106(gcm(aes))' 0x0102030405060708090a0b0c0d0e0f1011121314 128 2>/dev/null && ok=0
  ip netns del "$ns" 2>/dev/null
  return $ok
}
MODE=${IKEV2D_TEST_KERNEL:-auto}
SKIP_REASON=''
if [[ $MODE == auto ]]; then
  if esp_probe; then MODE=host
  elif [[ $EUID == 0 ]]; then MODE=vm   # vm-run installs qemu & co. when root
  elif [[ $EUID != 0 ]]; then MODE=skip; SKIP_REASON="not root (kernel and e2e suites need root, in the VM or on an ESP-capable kernel)"
  fi
fi
case $MODE in
  host)
    say "kernel + e2e suites (host kernel $(uname -r) carries ESP)"
    t=$(now)
    bash "$ROOT/scripts/test.sh" --kernel-suites "$@"
    echo "--- kernel + e2e took $(since "$t")"
    ;;
  vm)
    VM_TIMEOUT=${IKEV2D_TEST_VM_TIMEOUT:-1500}
    say "kernel + e2e suites inside scripts/vm-run (host kernel $(uname -r) has no ESP; timeout ${VM_TIMEOUT}s)"
    t=$(now)
    "$ROOT/scripts/vm-run" --modules ipsec --mem "${IKEV2D_TEST_VM_MEM:-2G}" --timeout "$VM_TIMEOUT" -- \
      bash "$ROOT/scripts/test.sh" --kernel-suites "$@"
    vrc=$?
    echo "--- vm-run exit $vrc after $(since "$t")"
    case $vrc in
      0) ;;
      124) FAIL_NOTES+=("vm-run: the VM timed out after ${VM_TIMEOUT}s") ;;
      *) FAIL_NOTES+=("vm-run exited $vrc") ;;
    esac
    ;;
  skip)
    [[ -n $SKIP_REASON ]] || SKIP_REASON="IKEV2D_TEST_KERNEL=skip"
    ;;
  *) echo "IKEV2D_TEST_KERNEL=$MODE: expected auto, host, vm or skip" >&2; exit 2 ;;
esac

# Skipped kernel/e2e suites are counted as skipped tests: collected with a name filter
# that matches nothing, so vitest reports every test as skipped and runs none.
SKIPPED_LISTED=0
if [[ $MODE == skip ]]; then
  echo
  echo "SKIPPED: kernel and end-to-end suites: $SKIP_REASON"
  "$VITEST" run --project kernel --project e2e --passWithNoTests -t '^ikev2d: count only, run nothing$' \
    --reporter=json --outputFile.json="$ROOT/.vitest-results-skipped.json" >/dev/null 2>&1
  SKIPPED_LISTED=$(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); console.log(r.numTotalTests)' \
    "$ROOT/.vitest-results-skipped.json" 2>/dev/null || echo 0)
  rm -f "$ROOT/.vitest-results-skipped.json"
  if [[ -n ${CI:-} && ${CI:-} != false ]]; then
    FAIL_NOTES+=("CI must run the kernel and end-to-end suites, but they were skipped: $SKIP_REASON")
  fi
fi

# 5. Aggregate the JSON reports.
say "summary"
SUMMARY=$(MODE=$MODE SKIPPED_LISTED=$SKIPPED_LISTED node --input-type=module - <<'EOF'
import { existsSync, readFileSync } from 'node:fs';
const projects = process.env.MODE === 'skip' ? ['unit'] : ['unit', 'kernel', 'e2e'];
let passed = 0, failed = 0, skipped = Number(process.env.SKIPPED_LISTED || 0);
const notes = [];
for (const p of projects) {
  const file = `.vitest-results-${p}.json`, rcFile = `.vitest-results-${p}-rc.json`;
  const rc = existsSync(rcFile) ? JSON.parse(readFileSync(rcFile, 'utf8')).rc : null;
  if (!existsSync(file)) {
    failed += 1;
    notes.push(`${p}: no report (vitest ${rc === null ? 'did not run' : `exited ${rc}`})`);
    continue;
  }
  const r = JSON.parse(readFileSync(file, 'utf8'));
  let f = r.numFailedTests;
  // a file that fails to load (syntax/import error) has no failed test but a failed suite
  for (const t of r.testResults) {
    if (t.status === 'failed' && !t.assertionResults.some((a) => a.status === 'failed')) {
      f += 1;
      notes.push(`${p}: ${t.name}: ${(t.message || 'failed').split('\n')[0]}`);
    }
  }
  if (rc !== null && rc !== 0 && f === 0) {
    f = 1;
    notes.push(`${p}: vitest exited ${rc} although no test failed (unhandled error?)`);
  }
  passed += r.numPassedTests;
  failed += f;
  skipped += r.numPendingTests + r.numTodoTests;
  console.error(`${p.padEnd(7)} ${r.numPassedTests} passed, ${f} failed, ${r.numPendingTests + r.numTodoTests} skipped (${r.testResults.length} files)`);
}
for (const n of notes) console.error(`FAILED: ${n}`);
console.log(`${passed} ${failed} ${skipped}`);
EOF
)
read -r PASSED FAILED SKIPPED <<<"${SUMMARY:-0 1 0}"
for n in "${FAIL_NOTES[@]}"; do echo "FAILED: $n"; FAILED=$((FAILED + 1)); done
RC=0
if (( FAILED > 0 )); then RC=1; fi
if (( PASSED + FAILED == 0 )); then echo "FAILED: no test was executed"; FAILED=1; RC=1; fi
echo "--- npm test took $(since "$T_ALL") (kernel/e2e: $MODE)"
LINE="Tests: $PASSED passed, $FAILED failed, $SKIPPED skipped"
printf '{"passed":%d,"failed":%d,"skipped":%d,"line":"%s"}\n' "$PASSED" "$FAILED" "$SKIPPED" "$LINE" \
  > "$ROOT/.vitest-results-summary.json"
echo
echo "$LINE"
exit $RC
