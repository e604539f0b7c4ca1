# wait_for SECONDS COMMAND...: runs COMMAND every 20 ms until it succeeds; once SECONDS (whole)
# have passed it fails, saying on stderr what it waited for. The bound is time, not tries, so a
# slow COMMAND (an exec into a container) does not stretch it. bash only ($EPOCHREALTIME).
# Scripts and the integration tests (which include this file) wait on a condition with it
# instead of sleeping for a guessed time.
wait_for() {
  local end=$(( ${EPOCHREALTIME/./} + $1 * 1000000 )); shift
  until "$@"; do
    [ "${EPOCHREALTIME/./}" -lt $end ] || { echo "timed out waiting for: $*" >&2; return 1; }
    sleep 0.02
  done
}
