import { describe, expect, it } from 'vitest';
import { wrapperGoMod } from '../../../src/sandbox/binaries.js';
import { versions } from '../../../src/sandbox/versions.js';

const servedGoMod = `module k8s.io/kubernetes

go 1.26.0

require (
	k8s.io/api v0.0.0
	go.etcd.io/etcd/server/v3 v3.6.8 // indirect
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/cri-streaming => ./staging/src/k8s.io/cri-streaming
	k8s.io/client-go => ./staging/src/k8s.io/client-go
)
`;

describe('wrapperGoMod', () => {
  it('replaces every staging module listed by the served go.mod with its served version', () => {
    const mod = wrapperGoMod(servedGoMod);
    expect(mod).toContain(`require k8s.io/kubernetes ${versions.kubernetes}`);
    expect(mod).toContain('go 1.26.0');
    for (const m of ['k8s.io/api', 'k8s.io/cri-streaming', 'k8s.io/client-go']) {
      expect(mod).toContain(`replace ${m} => ${m} ${versions.staging}`);
    }
    expect(mod.match(/^replace /gm)).toHaveLength(3);
  });

  it('refuses a go.mod without staging replacements instead of building something else', () => {
    expect(() => wrapperGoMod('module k8s.io/kubernetes\n\ngo 1.26.0\n')).toThrow(/no staging modules/);
  });
});
