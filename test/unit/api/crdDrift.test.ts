import { readFileSync } from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { codeMateSpecSchema, codeMateStatusSchema, parseSpec } from '../../../src/api/codemate.js';
import { messageSpecSchema } from '../../../src/api/message.js';

type Schema = Record<string, unknown>;

const crds = parseAllDocuments(
  readFileSync(new URL('../../../manifests/crd.yaml', import.meta.url), 'utf8'),
).map(
  (d) =>
    d.toJSON() as {
      metadata: { name: string };
      spec: { versions: Array<{ schema: { openAPIV3Schema: Schema } }> };
    },
);
const crd = crds.find((d) => d.metadata.name === 'codemates.codemate.io')!;
const messageCrd = crds.find((d) => d.metadata.name === 'codematemessages.codemate.io')!;
const openApi = crd.spec.versions[0]!.schema.openAPIV3Schema as { properties: Record<string, Schema> };

const safeInt = 9007199254740991;

/** The parts of a schema both sides must agree on, in one comparable shape. */
function shape(node: Schema | undefined): unknown {
  if (!node) return undefined;
  if (Array.isArray(node.anyOf)) return { anyOf: (node.anyOf as Schema[]).map(shape) };
  const out: Record<string, unknown> = { type: node.type };
  for (const k of ['enum', 'default', 'minLength', 'maxLength', 'maxItems', 'pattern']) {
    if (node[k] !== undefined) out[k] = node[k];
  }
  for (const k of ['minimum', 'maximum']) {
    const v = node[k];
    if (v !== undefined && Math.abs(v as number) !== safeInt) out[k] = v;
  }
  if (node.type === 'object' && node.properties) {
    const props = node.properties as Record<string, Schema>;
    out.properties = Object.fromEntries(
      Object.keys(props)
        .sort()
        .map((k) => [k, shape(props[k])]),
    );
    out.required = [...((node.required as string[]) ?? [])].sort();
  }
  if (node.additionalProperties && typeof node.additionalProperties === 'object') {
    out.additionalProperties = shape(node.additionalProperties as Schema);
  }
  if (node.items) out.items = shape(node.items as Schema);
  return out;
}

const zodShape = (schema: z.ZodType) =>
  shape(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Schema);

describe('manifests/crd.yaml and src/api/codemate.ts', () => {
  it('describe the same spec', () => {
    expect(zodShape(codeMateSpecSchema)).toEqual(shape(openApi.properties.spec));
  });

  it('describe the same status', () => {
    expect(zodShape(codeMateStatusSchema)).toEqual(shape(openApi.properties.status));
  });

  it('describe the same CodeMateMessage spec', () => {
    const schema = messageCrd.spec.versions[0]!.schema.openAPIV3Schema as {
      properties: Record<string, Schema>;
    };
    expect(zodShape(messageSpecSchema)).toEqual(shape(schema.properties.spec));
  });

  it('accept the example CodeMate unchanged', () => {
    const example = parse(
      readFileSync(new URL('../../../manifests/examples/codemate.yaml', import.meta.url), 'utf8'),
    ) as {
      spec: unknown;
    };
    const parsed = parseSpec(example.spec);
    expect(parsed).toMatchObject({ ok: true });
  });
});
