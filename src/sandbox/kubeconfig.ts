import { readFile, writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import type { Pki } from './pki.js';

export const sandboxContext = 'codemate-sandbox';

/** An admin kubeconfig (client certificate in system:masters) for the sandbox apiserver. */
export async function writeAdminKubeconfig(file: string, pki: Pki, apiserverPort: number): Promise<void> {
  const b64 = async (f: string) => (await readFile(f)).toString('base64');
  await writeKubeconfig(file, apiserverPort, await b64(pki.caCert), `${sandboxContext}-admin`, {
    'client-certificate-data': await b64(pki.adminCert),
    'client-key-data': await b64(pki.adminKey),
  });
}

/** A kubeconfig that names its certificate files, for a program that reloads them (kubelet). */
export async function writeCertKubeconfig(
  file: string,
  client: { caCert: string; cert: string; key: string; user: string; apiserverPort: number },
): Promise<void> {
  await writeKubeconfig(
    file,
    client.apiserverPort,
    (await readFile(client.caCert)).toString('base64'),
    client.user,
    { 'client-certificate': client.cert, 'client-key': client.key },
  );
}

async function writeKubeconfig(
  file: string,
  apiserverPort: number,
  caData: string,
  userName: string,
  user: Record<string, string>,
): Promise<void> {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: sandboxContext,
        cluster: { server: `https://127.0.0.1:${apiserverPort}`, 'certificate-authority-data': caData },
      },
    ],
    users: [{ name: userName, user }],
    contexts: [
      {
        name: sandboxContext,
        context: { cluster: sandboxContext, user: userName, namespace: 'default' },
      },
    ],
    'current-context': sandboxContext,
  };
  await writeFile(file, stringify(config), { mode: 0o600 });
}
