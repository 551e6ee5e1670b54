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

# --- message tags: what makes a marker line unforgeable ----------------------------------------------
# The entrypoint writes a random key at each start (mode 0600). The marker line above an injected text is
# `[codemate message=<id>] tag=<16 hex digits of HMAC-SHA256(key, id)>`. A comment can copy marker lines
# but cannot compute a tag without the key, and a tag seen in the pane for one id says nothing about any
# other id. (Perl's Digest::SHA is core Perl, and perl is in the image.)
session_key_file() {
  printf '%s' "${CODEMATE_STATE_DIR}/session-key"
}

new_session_key() {
  local file
  file=$(session_key_file)
  (umask 077 && head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"${file}.tmp")
  mv -f "${file}.tmp" "$file"
}

message_tag() {
  perl -MDigest::SHA=hmac_sha256_hex -e '
    open my $f, "<", $ARGV[0] or exit 1;
    my $key = do { local $/; <$f> };
    print substr(hmac_sha256_hex($ARGV[1], $key), 0, 16);
  ' "$(session_key_file)" "$1"
}

# --- the prompt box --------------------------------------------------------------------------------------
# Reads the session's prompt box from the screen and prints what it holds:
#   none        no prompt line is visible (no `❯` at the start of a line)
#   empty       the box is empty
#   paste <id>  exactly the unsubmitted paste of a message recorded in $CODEMATE_STATE_DIR/pasted/
#   other       anything else: someone's typing, or a paste with text glued to it
# The box starts at the last line beginning with `❯`; its further lines (indented) run to a line that
# starts with a rule (`─`, `╭`, `╰`) or to the end of the screen. Whitespace is ignored in the comparison, because the TUI wraps, indents and expands
# tabs. A long paste is shown as `[Pasted text #N +M lines]`, which matches a pasted text with M newlines.
# Usage: prompt_box [PREFERRED_ID]
prompt_box() {
  tmux capture-pane -p -J -t "=${CODEMATE_SESSION}:" 2>/dev/null |
    perl -e '
      use strict;
      use warnings;
      my ($dir, $first) = @ARGV;
      binmode STDIN, ":encoding(UTF-8)";
      my @lines = map { s/\s+\z//r } <STDIN>;
      my ($start) = grep { $lines[$_] =~ /^\x{276F}(?: |\z)/ } reverse 0 .. $#lines;
      if (!defined $start) { print "none\n"; exit 0 }
      my @box = ($lines[$start] =~ s/^\x{276F} ?//r);
      for my $line (@lines[$start + 1 .. $#lines]) {
        last if $line =~ /^[\x{2500}\x{256D}\x{2570}]/;
        push @box, $line;
      }
      (my $shown = join "", @box) =~ s/\s+//g;
      if ($shown eq "") { print "empty\n"; exit 0 }
      opendir my $d, $dir or do { print "other\n"; exit 0 };
      my @ids = grep { /^[a-z0-9][a-z0-9.-]*\z/ && $_ ne $first } readdir $d;
      unshift @ids, $first if $first ne "" && -f "$dir/$first";
      for my $id (@ids) {
        open my $f, "<:encoding(UTF-8)", "$dir/$id" or next;
        my $text = do { local $/; <$f> };
        my $newlines = () = $text =~ /\n/g;
        (my $flat = $text) =~ s/\s+//g;
        if ($shown eq $flat || ($shown =~ /^\[Pastedtext#\d+\+(\d+)lines\]\z/ && $1 == $newlines)) {
          print "paste $id\n";
          exit 0;
        }
      }
      print "other\n";
    ' "${CODEMATE_STATE_DIR}/pasted" "${1:-}"
}
