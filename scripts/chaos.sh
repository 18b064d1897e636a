#!/usr/bin/env bash
# `make chaos`: the fault battery. Each fault is a test that injects it against real
# processes on loopback (kiln-serve, the step binaries, s3s-fs, MLflow, Prometheus) and
# checks the documented outcome: an exit code or a state, nothing half-written, no
# answered request missing from the prediction log. The same tests run in `make test`;
# this runs only them, bounded: every test here finishes in under a minute.
#
#   scripts/chaos.sh          run the battery
#   scripts/chaos.sh --list   print the faults and their expected outcome
set -euo pipefail

# package | test target (or "lib") | test name | fault -> expected outcome
battery() {
  cat <<'LIST'
kiln-serve|serve|security::slow_clients_are_cut_after_their_timeouts_while_every_other_request_is_answered|slow clients (stalled heads and bodies, idle sockets) -> 408 / closed after the timeout; other requests answered
kiln-serve|serve|operations::sigterm_with_stuck_connections_exits_within_the_grace_period_and_logs_every_answered_row|SIGTERM with stuck connections -> exit 0 within grace + 1 s; every answered row logged
kiln-serve|serve|operations::overload_is_shed_at_once_and_sigterm_loses_no_accepted_request|overload, then SIGTERM under load -> 503 at once; exit 0; every answered row logged
kiln-serve|serve|operations::the_prediction_log_survives_a_store_outage_with_every_row_written_once_it_is_back|S3 down during prediction-log flushes -> rows spilled locally, every row written once when S3 is back
kiln-serve|lib|tests::a_scoring_panic_answers_500_marks_the_model_not_ready_and_ends_the_server_non_zero|a scoring-thread panic -> 500, not ready, exit 1
kiln-e2e|faults|an_outage_mid_step_exits_75_keeps_the_previous_result_and_the_retry_completes|S3 down during a step -> exit 75, previous result kept, the retry completes
kiln-e2e|faults|a_full_disk_under_a_step_fails_in_one_line_and_keeps_the_previous_result|a full disk under a step -> exit 1 in one line, previous result kept
kiln-prepare|prepare|killed_mid_write_leaves_no_manifest_and_no_readable_half_file|kill -9 in the middle of a write -> no manifest, no readable half file; the rerun completes
kiln-tune|tune|a_killed_search_run_again_repeats_only_the_unfinished_trials|kill -9 during a search -> the rerun repeats only unfinished trials
kiln-register|register|mlflow_down_or_refusing_credentials_is_one_clear_line|MLflow down during register -> exit 75 in one line, nothing registered
kiln-rollout|canary|prometheus_unreachable_halts_with_exit_75_and_never_promotes|Prometheus down mid-rollout -> exit 75, never promoted
kiln-register|aliases|concurrent_promotes_and_rollbacks_lose_no_move_on_a_folder|24 concurrent alias moves -> none lost
LIST
}

if [ "${1:-}" = "--list" ]; then
  battery | awk -F'|' '{ printf "%-40s %s\n", $2 "::" substr($3, 1, 36), $4 }'
  exit 0
fi

cargo build --locked --bins
failed=0
while IFS='|' read -r package target name fault; do
  echo "== $fault"
  if [ "$target" = lib ]; then
    selector=(--lib)
  else
    selector=(--test "$target")
  fi
  if ! timeout 300 cargo test --locked -q -p "$package" "${selector[@]}" -- --exact "$name"; then
    echo "chaos: FAILED: $fault" >&2
    failed=1
  fi
done < <(battery)
exit $failed
