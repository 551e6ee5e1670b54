import { access, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { realNodeIp, realNodeName } from './components.js';
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
  /** The real node's kubelet, to the apiserver: system:node:<name> in system:nodes (Node authorizer). */
  kubeletClientCert: string;
  kubeletClientKey: string;
  /** The real node's kubelet, serving exec, logs and attach. */
  kubeletServingCert: string;
  kubeletServingKey: string;
  /** The apiserver, to kubelets (--kubelet-client-certificate); their webhook authorizer asks RBAC. */
  apiserverKubeletClientCert: string;
  apiserverKubeletClientKey: string;
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
    kubeletClientCert: f('kubelet-client.crt'),
    kubeletClientKey: f('kubelet-client.key'),
    kubeletServingCert: f('kubelet.crt'),
    kubeletServingKey: f('kubelet.key'),
    apiserverKubeletClientCert: f('apiserver-kubelet-client.crt'),
    apiserverKubeletClientKey: f('apiserver-kubelet-client.key'),
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

const clientExtensions =
  'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n';
const servingExtensions = (names: string[]) =>
  `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${names.join(',')}\n`;

/**
 * Generates a CA, the apiserver serving certificate, an admin client certificate in system:masters, the
 * service-account signing key pair and the real node's certificates, with openssl. Each file that exists
 * is kept, so a restarted sandbox keeps trusting the kubeconfig it already handed out, and a sandbox made
 * before a certificate was added gets just that one.
 */
export async function ensurePki(dir: string): Promise<Pki> {
  const pki = pkiAt(dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const openssl = (...args: string[]) => runProgram('openssl', args, { cwd: dir });
  const ecKey = (file: string) =>
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file);

  if (!(await exists(pki.caCert))) {
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
  }

  const issue = async (key: string, cert: string, subject: string, extensions: string) => {
    if (await exists(cert)) return;
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
  await issue(pki.servingKey, pki.servingCert, '/CN=kube-apiserver', servingExtensions(servingNames));
  await issue(pki.adminKey, pki.adminCert, '/O=system:masters/CN=codemate-sandbox-admin', clientExtensions);
  await issue(
    pki.kubeletClientKey,
    pki.kubeletClientCert,
    `/O=system:nodes/CN=system:node:${realNodeName}`,
    clientExtensions,
  );
  await issue(
    pki.kubeletServingKey,
    pki.kubeletServingCert,
    `/CN=${realNodeName}`,
    servingExtensions([`DNS:${realNodeName}`, `IP:${realNodeIp}`]),
  );
  await issue(
    pki.apiserverKubeletClientKey,
    pki.apiserverKubeletClientCert,
    '/O=system:masters/CN=kube-apiserver-kubelet-client',
    clientExtensions,
  );
  if (!(await exists(pki.serviceAccountPub))) {
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
  }
  return pki;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}
