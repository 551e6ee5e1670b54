import { access, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runProgram } from './runProgram.js';

/** File names of the sandbox's PKI, relative to its pki directory. */
export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

export function pkiAt(dir: string): Pki {
  const f = (name: string) => path.join(dir, name);
  return {
    dir,
    caCert: f('ca.crt'),
    caKey: f('ca.key'),
    servingCert: f('apiserver.crt'),
    servingKey: f('apiserver.key'),
    adminCert: f('admin.crt'),
    adminKey: f('admin.key'),
    serviceAccountKey: f('sa.key'),
    serviceAccountPub: f('sa.pub'),
  };
}

const servingNames = [
  'DNS:localhost',
  'DNS:kubernetes',
  'DNS:kubernetes.default',
  'DNS:kubernetes.default.svc',
  'DNS:kubernetes.default.svc.cluster.local',
  'IP:127.0.0.1',
  'IP:10.0.0.1',
];

/**
 * Generates (once) a CA, the apiserver serving certificate, an admin client certificate in
 * system:masters and the service-account signing key pair, with openssl. Existing files are kept, so a
 * restarted sandbox keeps trusting the kubeconfig it already handed out.
 */
export async function ensurePki(dir: string): Promise<Pki> {
  const pki = pkiAt(dir);
  if (await exists(pki.serviceAccountPub)) return pki;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const openssl = (...args: string[]) => runProgram('openssl', args, { cwd: dir });
  const ecKey = (file: string) =>
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file);

  await ecKey(pki.caKey);
  await openssl(
    'req',
    '-x509',
    '-new',
    '-key',
    pki.caKey,
    '-days',
    '3650',
    '-subj',
    '/CN=codemate-sandbox-ca',
    '-out',
    pki.caCert,
  );

  const issue = async (key: string, cert: string, subject: string, extensions: string) => {
    await ecKey(key);
    const csr = `${cert}.csr`;
    const ext = `${cert}.ext`;
    await openssl('req', '-new', '-key', key, '-subj', subject, '-out', csr);
    await writeFile(ext, extensions);
    await openssl(
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      pki.caCert,
      '-CAkey',
      pki.caKey,
      '-CAcreateserial',
      '-days',
      '3650',
      '-extfile',
      ext,
      '-out',
      cert,
    );
  };
  await issue(
    pki.servingKey,
    pki.servingCert,
    '/CN=kube-apiserver',
    `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${servingNames.join(',')}\n`,
  );
  await issue(
    pki.adminKey,
    pki.adminCert,
    '/O=system:masters/CN=codemate-sandbox-admin',
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n',
  );
  await openssl(
    'genpkey',
    '-algorithm',
    'RSA',
    '-pkeyopt',
    'rsa_keygen_bits:2048',
    '-out',
    pki.serviceAccountKey,
  );
  await openssl('pkey', '-in', pki.serviceAccountKey, '-pubout', '-out', pki.serviceAccountPub);
  return pki;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}
