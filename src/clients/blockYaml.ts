/**
 * The block-style YAML that kubectl, client-go and `codemate dev up` write kubeconfigs in: nested
 * mappings and sequences, plain and quoted one-line scalars, `{}` and `[]`, whole-line comments.
 *
 * It exists for start-up time: the `yaml` package costs about 50 ms to load and compile, a third of what
 * `codemate list` may take in all (bench/README.md). It answers undefined for anything outside that
 * subset (anchors, tags, block scalars, flow collections with content, multi-line scalars, trailing
 * comments, numbers other than plain integers, duplicate keys), and the caller then parses with `yaml`.
 * So it never reads a document differently from `yaml`; it only declines some.
 */

interface Line {
  indent: number;
  text: string;
}

class Unsupported extends Error {}

const nothing = (): never => {
  throw new Unsupported();
};

/** The document, or undefined when it uses YAML outside the subset above. */
export function parseBlockYaml(source: string): unknown {
  const lines: Line[] = [];
  for (const raw of source.split(/\r?\n/)) {
    const text = raw.trimEnd();
    const content = text.trimStart();
    if (content === '' || content.startsWith('#')) continue;
    const indent = text.length - content.length;
    if (text.slice(0, indent).includes('\t')) return undefined;
    lines.push({ indent, text: content });
  }
  try {
    if (lines.length === 0) return null;
    const cursor = { at: 0 };
    const value = node(lines, cursor, lines[0]!.indent);
    return cursor.at === lines.length ? value : undefined;
  } catch (error) {
    if (error instanceof Unsupported) return undefined;
    throw error;
  }
}

const isItem = (line: Line) => line.text === '-' || line.text.startsWith('- ');

function node(lines: Line[], cursor: { at: number }, indent: number): unknown {
  const first = lines[cursor.at]!;
  if (first.indent !== indent) nothing();
  return isItem(first) ? sequence(lines, cursor, indent) : mapping(lines, cursor, indent);
}

function sequence(lines: Line[], cursor: { at: number }, indent: number): unknown[] {
  const items: unknown[] = [];
  for (let line = lines[cursor.at]; line && line.indent === indent && isItem(line); line = lines[cursor.at]) {
    const rest = line.text.slice(1);
    const content = rest.trimStart();
    if (content === '') {
      cursor.at += 1;
      const next = lines[cursor.at];
      items.push(next && next.indent > indent ? node(lines, cursor, next.indent) : null);
    } else if (content.startsWith('- ') || content === '-' || keyOf(content) !== undefined) {
      // "- key: value" opens a mapping (or "- - x" a sequence) at the column of its content.
      lines[cursor.at] = { indent: indent + 1 + rest.length - content.length, text: content };
      items.push(node(lines, cursor, lines[cursor.at]!.indent));
    } else {
      items.push(scalar(content));
      cursor.at += 1;
    }
  }
  const next = lines[cursor.at];
  if (next && next.indent > indent) nothing();
  return items;
}

function mapping(lines: Line[], cursor: { at: number }, indent: number): Record<string, unknown> {
  const map: Record<string, unknown> = {};
  for (
    let line = lines[cursor.at];
    line && line.indent === indent && !isItem(line);
    line = lines[cursor.at]
  ) {
    const key = keyOf(line.text) ?? nothing();
    if (Object.hasOwn(map, key)) nothing();
    const value = line.text.slice(key.length + 1).trimStart();
    cursor.at += 1;
    if (value !== '') {
      map[key] = scalar(value);
      continue;
    }
    const next = lines[cursor.at];
    // A sequence may sit at its key's own indentation, as client-go writes it.
    map[key] =
      next && (next.indent > indent || (next.indent === indent && isItem(next)))
        ? node(lines, cursor, next.indent)
        : null;
  }
  const next = lines[cursor.at];
  if (next && next.indent > indent) nothing();
  return map;
}

/** The key of a `key: value` or `key:` line, when the key is a plain string. */
function keyOf(text: string): string | undefined {
  const match = /^([A-Za-z_][A-Za-z0-9_./-]*):(?: |$)/.exec(text);
  return match?.[1];
}

function scalar(text: string): unknown {
  if (text === '{}') return {};
  if (text === '[]') return [];
  if (text.startsWith('"')) {
    return /^"(?:[^"\\]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"$/.test(text) ? JSON.parse(text) : nothing();
  }
  if (text.startsWith("'"))
    return /^'(?:[^']|'')*'$/.test(text) ? text.slice(1, -1).replace(/''/g, "'") : nothing();
  if (/^(?:null|Null|NULL|~)$/.test(text)) return null;
  if (/^(?:true|True|TRUE)$/.test(text)) return true;
  if (/^(?:false|False|FALSE)$/.test(text)) return false;
  if (/^[0-9]+$/.test(text)) return Number(text);
  // Plain strings only: nothing YAML could read as a number, a flow collection, an alias, a tag, a
  // block scalar or a comment.
  if (/^[-+.0-9?:,[\]{}#&*!|>%@`]/.test(text) || /[ \t]#|: |:$/.test(text)) nothing();
  return text;
}
