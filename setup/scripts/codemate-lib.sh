# shellcheck shell=bash
# Shared by the session scripts: paths and the one-line failure convention.

: "${CODEMATE_WORKSPACE:=/workspace}"
: "${CODEMATE_STATE_DIR:=${CODEMATE_WORKSPACE}/.codemate}"
CODEMATE_SESSION=claude-code
export CODEMATE_WORKSPACE CODEMATE_STATE_DIR CODEMATE_SESSION

# Prints one clear line on stderr and exits with the given code.
die() {
  local code=$1
  shift
  printf 'codemate: %s\n' "$*" >&2
  exit "$code"
}

log() {
  printf 'codemate: %s\n' "$*" >&2
}

session_state() {
  cat "${CODEMATE_STATE_DIR}/session-state" 2>/dev/null || echo starting
}

set_session_state() {
  mkdir -p "${CODEMATE_STATE_DIR}"
  printf '%s\n' "$1" >"${CODEMATE_STATE_DIR}/session-state.tmp"
  mv -f "${CODEMATE_STATE_DIR}/session-state.tmp" "${CODEMATE_STATE_DIR}/session-state"
}
