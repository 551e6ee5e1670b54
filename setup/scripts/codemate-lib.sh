# shellcheck shell=bash
# Shared by the session scripts: paths and the one-line failure convention.

: "${CODEMATE_WORKSPACE:=/workspace}"
: "${CODEMATE_STATE_DIR:=${CODEMATE_WORKSPACE}/.codemate}"
: "${CLAUDE_CONFIG_DIR:=${CODEMATE_WORKSPACE}/.claude}"
CODEMATE_SESSION=claude-code
export CODEMATE_WORKSPACE CODEMATE_STATE_DIR CLAUDE_CONFIG_DIR CODEMATE_SESSION

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
# Reads the session's prompt box from the screen (tmux capture-pane, with attributes) and prints one line:
#   STATE ID STASHED DIGEST
# STATE is one of
#   none   no prompt box is visible (a dialog or menu covers it, or the TUI is not drawn yet)
#   empty  the box is empty
#   paste  it holds exactly the unsubmitted paste of message ID (a text in $CODEMATE_STATE_DIR/pasted/)
#   other  anything else: a person's typing, or a paste with text glued to it
# ID is the message id for paste, else "-". STASHED is 1 when the TUI shows "draft stashed" (Ctrl+S holds a
# draft), else 0. DIGEST identifies what the box shows, so a caller can see whether it changes.
#
# What Claude Code 2.1.332 draws (measured): a rule of `─` above a line starting with `❯` and a no-break
# space, the input after it, further input lines indented by two spaces, and a rule below. Lines above the
# box hold history, where submitted prompts also start with `❯`; only the `❯` line right under a rule is the
# box. A paste of more than 800 characters or more than two newlines shows as `[Pasted text #N +M lines]`
# (M: its newline count), or `[Pasted text #N]` without newlines. An empty box may show a dim placeholder
# ("Press up to edit queued messages", its first letter under the reverse-video cursor): dim text is never
# input. The status line right above the upper rule ends in "draft stashed" while a draft is stashed.
# Whitespace is ignored in the comparison, because the TUI wraps, indents and turns tabs into spaces.
# Usage: prompt_box [PREFERRED_ID]
prompt_box() {
  tmux capture-pane -p -e -J -t "=${CODEMATE_SESSION}:" 2>/dev/null |
    perl -MDigest::MD5=md5_hex -MEncode=encode_utf8 -e '
      use strict;
      use warnings;
      my ($dir, $first) = @ARGV;
      binmode STDIN, ":encoding(UTF-8)";
      # Each screen line as plain text, and per character: 1 dim, 2 reverse video.
      my (@plain, @attrs);
      while (my $raw = <STDIN>) {
        $raw =~ s/\r?\n\z//;
        $raw =~ s/\e\][^\a\e]*(?:\a|\e\\)//g;
        my $text = "";
        my @a;
        my ($dim, $rev) = (0, 0);
        for my $tok (split /(\e\[[0-9;:]*m)/, $raw) {
          if ($tok =~ /^\e\[([0-9;:]*)m\z/) {
            my @p = split /;/, $1, -1;
            @p = (0) unless @p;
            while (@p) {
              my $c = shift @p;
              if ($c =~ /:/) { next }
              $c = 0 if $c eq "";
              if ($c == 0) { ($dim, $rev) = (0, 0) }
              elsif ($c == 2) { $dim = 1 }
              elsif ($c == 22) { $dim = 0 }
              elsif ($c == 7) { $rev = 1 }
              elsif ($c == 27) { $rev = 0 }
              elsif ($c == 38 || $c == 48 || $c == 58) {
                my $k = shift(@p) // "";
                if ($k eq "5") { shift @p } elsif ($k eq "2") { splice @p, 0, 3 }
              }
            }
            next;
          }
          $tok =~ s/\e\[[0-9;:?]*[A-Za-z]//g;
          $tok =~ s/\e//g;
          for my $ch (split //, $tok) { $text .= $ch; push @a, $dim | ($rev << 1) }
        }
        push @plain, $text;
        push @attrs, \@a;
      }
      my $start;
      for my $i (reverse 1 .. $#plain) {
        if ($plain[$i] =~ /^\x{276F}(?:[ \x{A0}]|\z)/ && $plain[$i - 1] =~ /^\x{2500}/) { $start = $i; last }
      }
      if (!defined $start) { print "none - 0 -\n"; exit 0 }
      my $stashed = $start >= 2 && $plain[$start - 2] =~ /draft stashed\s*\z/ ? 1 : 0;
      my $shown = "";
      for my $i ($start .. $#plain) {
        last if $i > $start && $plain[$i] =~ /^\x{2500}/;
        my @c = split //, $plain[$i];
        my @a = @{ $attrs[$i] };
        my $from = 0;
        if ($i == $start) { $from = @c > 1 && $c[1] =~ /[ \x{A0}]/ ? 2 : 1 }
        for my $k ($from .. $#c) {
          next if $a[$k] & 1;
          next if ($a[$k] & 2) && $k < $#c && ($a[$k + 1] & 1);
          $shown .= $c[$k];
        }
      }
      $shown =~ s/\s+//g;
      my $digest = substr(md5_hex(encode_utf8($shown)), 0, 12);
      if ($shown eq "") { print "empty - $stashed $digest\n"; exit 0 }
      my @ids;
      if (opendir my $d, $dir) { @ids = grep { /^[a-z0-9][a-z0-9.-]*\z/ && $_ ne $first } readdir $d }
      unshift @ids, $first if $first ne "" && -f "$dir/$first";
      for my $id (@ids) {
        open my $f, "<:encoding(UTF-8)", "$dir/$id" or next;
        my $text = do { local $/; <$f> };
        my $newlines = () = $text =~ /\n/g;
        (my $flat = $text) =~ s/\s+//g;
        if ($shown eq $flat
          || ($shown =~ /^\[Pastedtext#\d+\+(\d+)lines\]\z/ && $1 == $newlines)
          || ($shown =~ /^\[Pastedtext#\d+\]\z/ && $newlines == 0)) {
          print "paste $id $stashed $digest\n";
          exit 0;
        }
      }
      print "other - $stashed $digest\n";
    ' "${CODEMATE_STATE_DIR}/pasted" "${1:-}"
}

# --- the text that is pasted ------------------------------------------------------------------------------
# Prints FILE's bytes as the text codemate-inject pastes: decoded as UTF-8 (invalid bytes become U+FFFD);
# CR dropped (CRLF arrives as LF); U+2028 and U+2029 as LF, as the TUI reads them; C0 controls but tab and
# newline, DEL and the C1 range dropped, so no escape sequence can end the bracketed paste; every character
# Claude Code 2.1.332 removes from a prompt dropped too (below); NFC, as the TUI normalises; trailing
# whitespace trimmed.
#
# The characters the TUI removes (its own list): U+00AD, U+034F, U+061C, U+115F-U+1160, U+17B4-U+17B5,
# U+180B-U+180F, U+200B-U+200F, U+202A-U+202E, U+2060-U+206F, U+3164, U+FE00-U+FE0F, U+FEFF, U+FFA0,
# U+FFF0-U+FFFB, U+1107F, U+13430-U+1343F, U+16FE4, U+1BCA0-U+1BCA3, U+1D173-U+1D17A, U+E0000-U+E0FFF.
# The bidi controls among them (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) make it hold the
# prompt for review instead of submitting it ("Removed 1 invisible character · review and press Enter to
# send"), so no hook fires; the others it drops silently. It keeps some of them in context (a zero-width
# joiner inside an emoji sequence, a variation selector after an emoji); they are dropped here everywhere.
clean_text() {
  perl -MEncode -MUnicode::Normalize=NFC -0777 -ne '
    my $s = Encode::decode("UTF-8", $_, Encode::FB_DEFAULT);
    $s =~ s/\r//g;
    $s =~ s/[\x{2028}\x{2029}]/\n/g;
    $s =~ s/[\x{00}-\x{08}\x{0B}-\x{1F}\x{7F}-\x{9F}\x{AD}\x{34F}\x{61C}\x{115F}\x{1160}\x{17B4}\x{17B5}\x{180B}-\x{180F}\x{200B}-\x{200F}\x{202A}-\x{202E}\x{2060}-\x{206F}\x{3164}\x{FE00}-\x{FE0F}\x{FEFF}\x{FFA0}\x{FFF0}-\x{FFFB}\x{1107F}\x{13430}-\x{1343F}\x{16FE4}\x{1BCA0}-\x{1BCA3}\x{1D173}-\x{1D17A}\x{E0000}-\x{E0FFF}]//g;
    $s = NFC($s);
    $s =~ s/\s+\z//;
    binmode STDOUT, ":encoding(UTF-8)";
    print $s;
  ' "$1"
}

# --- receipts ---------------------------------------------------------------------------------------------
# True when Claude's transcript holds the marker line $1: the text reached Claude even if no hook said so.
# The tag in the line is a secret of the session, so only a paste of that message can have put it there.
in_transcript() {
  grep -rqsF -- "$1" "${CLAUDE_CONFIG_DIR}/projects" 2>/dev/null
}

# At a session start: the previous TUI and its prompt box are gone. Each message pasted into it and never
# acknowledged either reached Claude (its marker line is in the transcript: acknowledged now) or was lost
# with the box (forgotten, so that the operator's retry pastes it again).
settle_unacknowledged() {
  local f id
  mkdir -p "${CODEMATE_STATE_DIR}/pasted" "${CODEMATE_STATE_DIR}/acks"
  (
    flock 9
    for f in "${CODEMATE_STATE_DIR}"/pasted/*; do
      [ -f "$f" ] || continue
      id=${f##*/}
      if [ -e "${CODEMATE_STATE_DIR}/acks/${id}" ]; then
        :
      elif in_transcript "$(head -n 1 "$f")"; then
        date -u +%Y-%m-%dT%H:%M:%SZ >"${CODEMATE_STATE_DIR}/acks/${id}"
        log "message ${id} reached Claude before the restart (it is in the transcript); acknowledged"
      else
        rm -f "${CODEMATE_STATE_DIR}/delivered/${id}"
        log "message ${id} was pasted before the restart but never reached Claude; it will be pasted again"
      fi
      rm -f "$f"
    done
  ) 9>"${CODEMATE_STATE_DIR}/inject.lock"
}
