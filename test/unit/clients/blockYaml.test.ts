import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseBlockYaml } from '../../../src/clients/blockYaml.js';

/** As kubectl (client-go) writes one: sequences at their key's indentation, `{}` for empty maps. */
const kubectlStyle = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
    server: https://127.0.0.1:6443
  name: kind-kind
- cluster:
    insecure-skip-tls-verify: true
    server: https://10.0.0.1:443/prefix
  name: other
contexts:
- context:
    cluster: kind-kind
    namespace: team-a
    user: kind-kind
  name: kind-kind
current-context: kind-kind
kind: Config
preferences: {}
users:
- name: kind-kind
  user:
    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
    client-key-data: LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCg==
- name: "token user"
  user:
    token: 'it''s a token'
`;

describe('parseBlockYaml', () => {
  it('reads the kubeconfigs that kubectl and the yaml package write exactly as yaml.parse does', () => {
    const indented = stringify(parse(kubectlStyle));
    for (const text of [
      kubectlStyle,
      indented,
      `# a comment\n${kubectlStyle}\n\n`,
      kubectlStyle.replace(/\n/g, '\r\n'),
    ]) {
      expect(parseBlockYaml(text)).toEqual(parse(text));
    }
  });

  it('reads scalars as the YAML 1.2 core schema does', () => {
    const text =
      'a: null\nb: ~\nc: true\nd: False\ne: 42\nf: yes\ng: "x\\ty"\nh: []\ni: -\nj:\n- 1\n- two\n-\n';
    // "i: -" is outside the subset; without it the rest reads as yaml reads it.
    expect(parseBlockYaml(text)).toBeUndefined();
    const supported = text.replace('i: -\n', '');
    expect(parseBlockYaml(supported)).toEqual(parse(supported));
  });

  it('declines what it does not read, so that the caller uses the yaml package', () => {
    for (const text of [
      'a: &x 1\nb: *x\n',
      'a: !!str 1\n',
      'a: |\n  block\n',
      'a: {b: c}\n',
      'a: b # trailing comment\n',
      'a: 1.5\n',
      'a: 0x1f\n',
      'a: plain\n  continued\n',
      'a: 1\na: 2\n',
      '---\na: 1\n',
      '"quoted key": 1\n',
      'a:\n\t- tab\n',
      '- a\n  b\n',
    ]) {
      expect(parseBlockYaml(text), text).toBeUndefined();
    }
  });
});
