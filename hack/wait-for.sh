# wait_for SECONDS COMMAND...: runs COMMAND every 20 ms until it succeeds; after SECONDS (whole)
# it fails, saying on stderr what it waited for. Scripts and the integration tests (which
# include this file) wait on a condition with it instead of sleeping for a guessed time.
wait_for() {
  local tries=$(( $1 * 50 )); shift
  until "$@"; do
    tries=$((tries - 1))
    [ $tries -gt 0 ] || { echo "timed out waiting for: $*" >&2; return 1; }
    sleep 0.02
  done
}
