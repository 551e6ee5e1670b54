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

# Sets $state to the session's state (ready, busy, idle, blocked), or "starting" until the first hook has
# written one. No fork: codemate-inject reads it on every delivery.
read_session_state() {
  state=
  { read -r state <"${CODEMATE_STATE_DIR}/session-state"; } 2>/dev/null || true
  state=${state:-starting}
}

set_session_state() {
  [ -d "${CODEMATE_STATE_DIR}" ] || mkdir -p "${CODEMATE_STATE_DIR}"
  printf '%s\n' "$1" >"${CODEMATE_STATE_DIR}/session-state.tmp"
  mv -f "${CODEMATE_STATE_DIR}/session-state.tmp" "${CODEMATE_STATE_DIR}/session-state"
}

# --- tmux: one client for a whole --serve loop -----------------------------------------------------------
# Every `tmux` command is a client process: fork, exec, connect, identify; about 5 ms on a busy 2-core node
# (measured), and an injection needs two (read the prompt box, paste). Under --serve the frame server keeps
# one client in control mode instead (tmux -C, attached without pane output and without a say in the
# window's size) and sends the loop's commands down its pipe, a fraction of a millisecond each (adr/0020).
# Output comes back through a file, which bash reads in blocks, where a pipe is read a byte at a time.

# tmux_run OUT ARG...: tmux ARG... (`;` separates commands, as on tmux's command line) through the frame
# server's control client; its output goes to the file OUT (- for none). Returns 0; 1 when tmux answered
# with an error (in $tmux_error); 2 when it could not be sent that way (no frame server, no control client:
# the session is not up yet), so it should run as its own client; 3 when it was sent but no answer came
# in 10 s (whether it ran is unknown; the client is restarted for the next command).
# shellcheck disable=SC2034 # tmux_error is its caller's
tmux_run() {
  local out=$1 arg args='' code
  shift
  tmux_error=
  [ -n "${frame_in:-}" ] || return 2
  for arg in "$@"; do
    [[ $arg != *[$'\t\n']* ]] || return 2
    args+=$'\t'$arg
  done
  printf '=tmux\t%s%s\n' "$out" "$args" >&"$frame_in"
  IFS=' ' read -r code tmux_error <&"$frame_out" || die 1 "the message framer of this channel is gone"
  return "$code"
}

# tmux_do ARG...: tmux ARG..., through the control client when it can, else as its own client. Fails as
# tmux would (1, with tmux's reason on stderr); a control client that stopped answering ends the process.
tmux_do() {
  local code=0
  tmux_run - "$@" || code=$?
  case "$code" in
    0) ;;
    2) tmux "$@" ;;
    3) die 1 "tmux did not answer in 10 s" ;;
    *)
      printf '%s\n' "${tmux_error:-tmux failed}" >&2
      return 1
      ;;
  esac
}

# --- message tags: what makes a marker line unforgeable ----------------------------------------------
# The entrypoint writes a random key at each start (mode 0600); frame_message (below) tags each marker
# line with it. The hook acknowledges a marker only when it equals the first line of pasted/<id>, which
# codemate-inject wrote with that tag just before its paste. (Perl's Digest::SHA is core Perl, and perl is
# in the image.)
session_key_file() {
  printf '%s' "${CODEMATE_STATE_DIR}/session-key"
}

new_session_key() {
  local file
  file=$(session_key_file)
  (umask 077 && head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"${file}.tmp")
  mv -f "${file}.tmp" "$file"
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

# quick_box ID NEWLINES FLAT: reads the prompt box from the plain screen, without attributes and without
# perl (a few ms, where prompt_box takes tens), for the two states an injection expects, and sets $box,
# $box_id, $stashed and $box_digest ("-") as prompt_box's line would: an empty box, or exactly the
# unsubmitted paste of message ID (in pasted/ID; NEWLINES and FLAT as frame_message set them).
# Returns 1 when the screen shows anything else, which only prompt_box can tell apart (no box, a person's
# text, a dim placeholder, another message's paste), and 2 when the tmux session is gone. The box is
# found as prompt_box finds it: the last `❯` line right under a rule.
# shellcheck disable=SC2034 # it sets its caller's variables
quick_box() {
  local screen i start=0 shown
  local -a lines
  local screen_file="${CODEMATE_STATE_DIR}/.screen.$$"
  if tmux_run "$screen_file" capture-pane -p -J -t "=${CODEMATE_SESSION}:"; then
    mapfile -t lines <"$screen_file"
  else
    [ $? != 1 ] || return 2
    screen=$(tmux capture-pane -p -J -t "=${CODEMATE_SESSION}:" 2>/dev/null) || return 2
    mapfile -t lines <<<"$screen"
  fi
  for ((i = ${#lines[@]} - 1; i >= 1; i--)); do
    case "${lines[i]}" in
      "❯" | "❯ "* | "❯"$'\xc2\xa0'*)
        if [[ ${lines[i - 1]} == "─"* ]]; then
          start=$i
          break
        fi
        ;;
    esac
  done
  [ "$start" -ge 1 ] || return 1
  shown=${lines[start]#"❯"}
  for ((i = start + 1; i < ${#lines[@]}; i++)); do
    [[ ${lines[i]} != "─"* ]] || break
    shown+=${lines[i]}
  done
  shown=${shown//[[:space:]]/}
  shown=${shown//$'\xc2\xa0'/}
  stashed=0
  if [ "$start" -ge 2 ] && [[ ${lines[start - 2]} =~ draft\ stashed[[:space:]]*$ ]]; then stashed=1; fi
  box_id=-
  box_digest=-
  if [ -z "$shown" ]; then
    box='empty'
    return 0
  fi
  [ -n "${1:-}" ] && [ -f "${CODEMATE_STATE_DIR}/pasted/$1" ] || return 1
  if { [ "${3:--}" != - ] && [ "$shown" = "$3" ]; } ||
    { [[ $shown =~ ^\[Pastedtext#[0-9]+\+([0-9]+)lines\]$ ]] && [ "${BASH_REMATCH[1]}" = "${2:-}" ]; } ||
    { [[ $shown =~ ^\[Pastedtext#[0-9]+\]$ ]] && [ "${2:-}" = 0 ]; }; then
    box='paste'
    box_id=$1
    return 0
  fi
  return 1
}

# --- the text that is pasted ------------------------------------------------------------------------------
# frame_message ID BYTES OUT: reads a message's body from stdin (exactly BYTES bytes, unless BYTES is empty)
# and writes OUT, the text codemate-inject pastes: the marker line, then the body cleaned. Sets $framed_nl,
# OUT's newline count, and $framed_flat, OUT without whitespace when it is short enough for the TUI to show
# inline (else "-"); quick_box compares the screen with those. One perl process does it all (under
# --serve, one for every message: frame_server), and loads Encode and Unicode::Normalize only for a body
# that is not plain ASCII. Returns 6 when stdin ends early, 7 when the session has no key yet; nothing is
# written then.
#
# The marker line is `[codemate message=<id>] tag=<16 hex digits of HMAC-SHA256(session key, id)>`. A
# comment can copy marker lines, but cannot compute a tag without the key (mode 0600, new at each start),
# and a tag seen for one id says nothing about any other id.
#
# The body as pasted: decoded as UTF-8 (invalid bytes become U+FFFD); CR dropped (CRLF arrives as LF);
# U+2028 and U+2029 as LF, as the TUI reads them; C0 controls but tab and newline, DEL and the C1 range
# dropped, so no escape sequence can end the bracketed paste; every character Claude Code 2.1.332 removes
# from a prompt dropped too (below); NFC, as the TUI normalises; trailing whitespace trimmed.
#
# The characters the TUI removes (its own list): U+00AD, U+034F, U+061C, U+115F-U+1160, U+17B4-U+17B5,
# U+180B-U+180F, U+200B-U+200F, U+202A-U+202E, U+2060-U+206F, U+3164, U+FE00-U+FE0F, U+FEFF, U+FFA0,
# U+FFF0-U+FFFB, U+1107F, U+13430-U+1343F, U+16FE4, U+1BCA0-U+1BCA3, U+1D173-U+1D17A, U+E0000-U+E0FFF.
# The bidi controls among them (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) make it hold the
# prompt for review instead of submitting it ("Removed 1 invisible character · review and press Enter to
# send"), so no hook fires; the others it drops silently. It keeps some of them in context (a zero-width
# joiner inside an emoji sequence, a variation selector after an emoji); they are dropped here everywhere.
# The perl program behind frame_message and frame_server: `frame(ID, BYTES, OUT, IN)` reads the body from
# the handle IN and writes OUT; it returns (0, "NEWLINES FLAT"), or (6 or 7, the reason).
# shellcheck disable=SC2016 # perl's own variables
frame_perl='
  use strict;
  use warnings;
  sub frame {
    my ($key_file, $id, $bytes, $out, $in) = @_;
    my $raw = "";
    if ($bytes ne "") {
      my $got = 0;
      while ($got < $bytes) {
        # sysread, not read: never a byte past this message (codemate-inject --serve reads the next).
        my $n = sysread($in, $raw, $bytes - $got, $got);
        die "codemate: reading stdin: $!\n" unless defined $n;
        last if $n == 0;
        $got += $n;
      }
      return (6, "codemate: stdin ended after $got of $bytes bytes; nothing was pasted") if $got != $bytes;
    } else {
      local $/;
      $raw = <$in> // "";
    }
    my $key = "";
    if (open my $k, "<", $key_file) { local $/; $key = <$k> // "" }
    return (7, "codemate: the session has no message key yet; message $id was not pasted") if $key eq "";
    require Digest::SHA;
    my $tag = substr(Digest::SHA::hmac_sha256_hex($id, $key), 0, 16);
    my $ascii = $raw !~ /[^\x00-\x7F]/;
    my $s = $raw;
    unless ($ascii) { require Encode; $s = Encode::decode("UTF-8", $raw, Encode::FB_DEFAULT()) }
    $s =~ s/\r//g;
    $s =~ s/[\x{2028}\x{2029}]/\n/g;
    $s =~ s/[\x{00}-\x{08}\x{0B}-\x{1F}\x{7F}-\x{9F}\x{AD}\x{34F}\x{61C}\x{115F}\x{1160}\x{17B4}\x{17B5}\x{180B}-\x{180F}\x{200B}-\x{200F}\x{202A}-\x{202E}\x{2060}-\x{206F}\x{3164}\x{FE00}-\x{FE0F}\x{FEFF}\x{FFA0}\x{FFF0}-\x{FFFB}\x{1107F}\x{13430}-\x{1343F}\x{16FE4}\x{1BCA0}-\x{1BCA3}\x{1D173}-\x{1D17A}\x{E0000}-\x{E0FFF}]//g;
    unless ($ascii) { require Unicode::Normalize; $s = Unicode::Normalize::NFC($s) }
    $s =~ s/\s+\z//;
    my $framed = "[codemate message=$id] tag=$tag\n$s";
    open my $o, ">", $out or die "codemate: writing $out: $!\n";
    binmode $o, ":utf8";
    print $o $framed;
    close $o or die "codemate: writing $out: $!\n";
    my $newlines = () = $framed =~ /\n/g;
    (my $flat = $framed) =~ s/\s+//g;
    $flat = "-" if length($flat) > 4096;
    return (0, "$newlines $flat");
  }
  # The control client of --serve (tmux_run): started on first use, and again after it ends.
  my ($tmux_pid, $tmux_in, $tmux_out, $tmux_buffer);
  sub tmux_stop {
    close $tmux_in if $tmux_in;
    close $tmux_out if $tmux_out;
    if ($tmux_pid) { kill "TERM", $tmux_pid; waitpid $tmux_pid, 0 }
    ($tmux_pid, $tmux_in, $tmux_out, $tmux_buffer) = ();
  }
  # The next answer to a command of ours: (0 or 1, its lines), or () when none came in 10 s or the client
  # ended. Outside a block, a line is a notification. A block whose flags are not 1 answers a command that
  # this client did not send (its attach, a hook), and is skipped whole.
  sub tmux_answer {
    my ($begin, $ours, @lines);
    my $deadline = time + 10;
    for (;;) {
      while ($tmux_buffer =~ s/\A([^\n]*)\n//) {
        my $line = $1;
        if (!defined $begin) {
          if ($line =~ /\A%begin (\d+ \d+ (\d+))\z/) { ($begin, $ours, @lines) = ($1, $2 eq "1") }
          next;
        }
        # The text of a pane (capture-pane) comes unescaped: only the exact closing line ends the block.
        if ($line eq "%end $begin" || $line eq "%error $begin") {
          return ($line eq "%end $begin" ? 0 : 1, @lines) if $ours;
          undef $begin;
          next;
        }
        push @lines, $line;
      }
      my $left = $deadline - time;
      return () if $left <= 0;
      my $bits = "";
      vec($bits, fileno($tmux_out), 1) = 1;
      next unless select(my $ready = $bits, undef, undef, $left) > 0;
      my $n = sysread($tmux_out, $tmux_buffer, 65536, length $tmux_buffer);
      return () unless $n;
    }
  }
  sub tmux_start {
    my ($session) = @_;
    require POSIX;
    return 1 if $tmux_pid && waitpid($tmux_pid, POSIX::WNOHANG()) == 0;
    tmux_stop();
    pipe(my $from_parent, $tmux_in) or return 0;
    pipe($tmux_out, my $to_parent) or return 0;
    my $pid = fork;
    return 0 unless defined $pid;
    if ($pid == 0) {
      open STDIN, "<&", $from_parent;
      open STDOUT, ">&", $to_parent;
      open STDERR, ">", "/dev/null";
      exec "tmux", "-C", "attach-session", "-t", "=$session", "-f", "no-output,ignore-size";
      exit 127;
    }
    close $from_parent;
    close $to_parent;
    $tmux_pid = $pid;
    $tmux_buffer = "";
    my $old = select $tmux_in; $| = 1; select $old;
    binmode $tmux_out;
    print $tmux_in "display-message -p codemate-ready\n";
    my ($code, @lines) = tmux_answer();
    return 1 if defined $code && $code == 0 && "@lines" eq "codemate-ready";
    tmux_stop();
    return 0;
  }
  # tmux_command(OUT, ARG...): (code, text) as tmux_run returns them.
  sub tmux_command {
    my ($out, @args) = @_;
    my @words;
    for my $arg (@args) {
      # Plain words as they are; others single-quoted, which tmux takes literally (no quote inside). No #:
      # some commands expand formats in their arguments (load-buffer in its path).
      if ($arg =~ m{\A[A-Za-z0-9_./:=@+,-]+\z} || $arg eq ";") { push @words, $arg }
      elsif ($arg !~ /[\x27#\x00-\x1f]/) { push @words, "\x27$arg\x27" }
      else { return (2, "an argument that cannot be quoted") }
    }
    tmux_start($ENV{CODEMATE_SESSION}) or return (2, "no control client");
    local $SIG{PIPE} = "IGNORE";
    unless (print $tmux_in join(" ", @words), "\n") { tmux_stop(); return (2, "the control client is gone") }
    # One answer per command, up to the first error: tmux skips the commands after a failed one.
    my ($code, @lines) = (0);
    for (0 .. scalar grep { $_ eq ";" } @words) {
      my ($failed, @got) = tmux_answer();
      unless (defined $failed) { tmux_stop(); return (3, "tmux did not answer in 10 s") }
      push @lines, @got;
      if ($failed) { $code = 1; last }
    }
    if ($out ne "-") {
      open my $o, ">", $out or return (1, "writing $out: $!");
      print $o map { "$_\n" } @lines;
      close $o or return (1, "writing $out: $!");
    }
    return $code ? (1, join(" ", @lines) || "tmux failed") : (0, "");
  }
  binmode STDOUT, ":utf8";
  if ($ARGV[0] eq "--serve") {
    # Requests on stdin, "ID BYTES OUT" per line; the bodies from the channel (fd IN); one answer line each.
    my (undef, $key_file, $fd) = @ARGV;
    open(my $in, "<&=", $fd) or die "codemate: the channel (fd $fd): $!\n";
    my $lock;
    binmode $in;
    $| = 1;
    while (my $request = <STDIN>) {
      chomp $request;
      # Also renames and removes files (move_file, remove_file), and holds the injection lock (lock_injection)
      # for the message being served, each of which would otherwise cost a fork and an exec.
      if ($request =~ /^=rename\t([^\t]+)\t([^\t]+)\z/) {
        print rename($1, $2) ? "0 renamed\n" : "1 codemate: renaming $1: $!\n";
        next;
      }
      if ($request =~ /^=remove\t([^\t]+)\z/) {
        print unlink($1) || $!{ENOENT} ? "0 removed\n" : "1 codemate: removing $1: $!\n";
        next;
      }
      if ($request =~ /^=lock\t([^\t]+)\z/) {
        close $lock if $lock;
        if (open $lock, ">", $1) {
          require Fcntl;
          print flock($lock, Fcntl::LOCK_EX()) ? "0 locked\n" : "1 codemate: locking $1: $!\n";
        } else {
          print "1 codemate: opening $1: $!\n";
        }
        next;
      }
      if ($request =~ /^=tmux\t([^\t]+)((?:\t[^\t]*)+)\z/) {
        my ($out, @args) = ($1, split /\t/, substr($2, 1), -1);
        my ($code, $text) = tmux_command($out, @args);
        $text =~ s/\n/ /g;
        print "$code $text\n";
        next;
      }
      if ($request eq "=unlock") {
        close $lock if $lock;
        undef $lock;
        print "0 unlocked\n";
        next;
      }
      my ($id, $bytes, $out) = split / /, $request, 3;
      my ($code, $text) = frame($key_file, $id, $bytes, $out, $in);
      $text =~ s/\n/ /g;
      print "$code $text\n";
    }
    exit 0;
  }
  my ($key_file, $id, $bytes, $out) = @ARGV;
  binmode STDIN;
  my ($code, $text) = frame($key_file, $id, $bytes, $out, \*STDIN);
  if ($code != 0) { print STDERR "$text\n"; exit $code }
  print "$text\n";
'

frame_message() {
  local code meta
  if [ -n "${frame_in:-}" ]; then
    # A frame server runs (frame_server): it reads the body from the channel itself. No fork.
    printf '%s %s %s\n' "$1" "$2" "$3" >&"$frame_in"
    IFS=' ' read -r code framed_nl framed_flat <&"$frame_out" || die 1 "the message framer of this channel is gone"
    [ "$code" = 0 ] || {
      printf '%s %s\n' "$framed_nl" "$framed_flat" >&2
      return "$code"
    }
    return 0
  fi
  meta=$(perl -e "$frame_perl" "${CODEMATE_STATE_DIR}/session-key" "$@") || return $?
  read -r framed_nl framed_flat <<<"$meta"
}

# framer_request WORD...: one request to the frame server (its words joined by tabs); dies unless it
# answers 0.
framer_request() {
  local code text IFS=$'\t'
  printf '%s\n' "$*" >&"$frame_in"
  IFS=' ' read -r code text <&"$frame_out" || die 1 "the message framer of this channel is gone"
  [ "$code" = 0 ] || die 1 "${text#codemate: }"
}

# move_file FROM TO: mv -f, through the frame server when one runs (no fork).
move_file() {
  if [ -n "${frame_in:-}" ]; then framer_request '=rename' "$1" "$2"; else mv -f "$1" "$2"; fi
}

# remove_file FILE: rm -f, through the frame server when one runs (no fork).
remove_file() {
  if [ -n "${frame_in:-}" ]; then framer_request '=remove' "$1"; else rm -f "$1"; fi
}

# lock_injection: one injection at a time per session (inject.lock). Under --serve the frame server holds
# the lock (no fork for flock), and the loop releases it after each request (unlock_injection); otherwise
# the lock is this process's descriptor 9, released when it exits.
lock_injection() {
  if [ -n "${frame_in:-}" ]; then
    framer_request '=lock' "${CODEMATE_STATE_DIR}/inject.lock"
  else
    exec 9>"${CODEMATE_STATE_DIR}/inject.lock"
    flock 9
  fi
}

unlock_injection() {
  framer_request '=unlock'
}

# frame_server: starts one perl process that frames every message of a --serve loop, reading their bodies
# from this shell's stdin (the channel) as frame_message asks; sets $frame_in and $frame_out for it.
frame_server() {
  exec {frame_channel}<&0
  coproc FRAMER { exec perl -e "$frame_perl" -- --serve "${CODEMATE_STATE_DIR}/session-key" "$frame_channel"; }
  # Copies that subshells keep (bash closes a coprocess's own descriptors in them).
  exec {frame_in}>&"${FRAMER[1]}" {frame_out}<&"${FRAMER[0]}"
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
    # Framed texts of injections that died before their paste.
    find "${CODEMATE_STATE_DIR}/pasted" -maxdepth 1 -type f -name '.*' -delete
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
